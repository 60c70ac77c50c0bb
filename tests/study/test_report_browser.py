"""The report renders in a real browser: headless Chromium loads report.html and every figure."""

from __future__ import annotations

import re
import shutil
import subprocess


def test_every_figure_loads_in_headless_chromium(sequential, tmp_path):
    _, out = sequential
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed for this test (make test installs it: apt-get install chromium)"
    html = (out / "report.html").read_text()
    n_figures = html.count("<img ")
    assert n_figures >= 4
    probe = ("<script>window.addEventListener('load',()=>{const s=[...document.images].map(i=>i.complete&&i.naturalWidth>0);"
             "document.body.setAttribute('data-loaded',s.filter(Boolean).length+'/'+s.length);"
             "document.body.setAttribute('data-width',document.documentElement.scrollWidth);"
             "document.body.setAttribute('data-first',document.images[0].alt);"
             "const caps=[...document.querySelectorAll('figure')].map(f=>(f.querySelector('figcaption')||{}).textContent||'');"
             "document.body.setAttribute('data-captions',caps.filter(c=>c.split(' ').length>=12).length+'/'+caps.length);"
             "});</script>")
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", probe + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium, *flags, "--window-size=1200,2400", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page did not finish loading"
    assert loaded.group(1) == loaded.group(2) == str(n_figures)
    # the page fits a 1200 px window: no horizontal scrollbar (wide tables scroll in their own box)
    width = int(re.search(r'data-width="(\d+)"', dom).group(1))
    assert width <= 1200, f"page is {width} px wide at a 1200 px window"
    # it opens with the summary figure, and every figure says what it shows and how to read it
    assert re.search(r'data-first="([^"]*)"', dom).group(1) == "summary"
    captions = re.search(r'data-captions="(\d+)/(\d+)"', dom)
    assert captions.group(1) == captions.group(2) == str(n_figures)
    assert html.index("fig-summary") < html.index("Recommendations")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
