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
             "document.body.setAttribute('data-loaded',s.filter(Boolean).length+'/'+s.length);});</script>")
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", probe + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', dom)
    assert loaded, "the page did not finish loading"
    assert loaded.group(1) == loaded.group(2) == str(n_figures)
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
