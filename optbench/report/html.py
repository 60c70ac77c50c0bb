"""The self-contained report.html: figures inlined as base64 PNGs, tables in scrolling boxes."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from optbench.report.figures import caption

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222;"
        "box-sizing:border-box}"
        ".scroll{overflow-x:auto;max-width:100%}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3;overflow-wrap:break-word}"
        "td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%;height:auto;border:1px solid #eee;margin:.3em 0}"
        "figure{margin:1em 0}figcaption{font-size:13px;color:#444;max-width:900px}"
        "h2{border-bottom:1px solid #ddd;padding-bottom:.2em;font-size:1.2em}li{margin:.2em 0}")


def _figure_html(path: Path) -> str:
    esc = html.escape
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    return (f"<figure id='fig-{esc(path.stem)}'><img alt='{esc(path.stem)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption><b>{esc(path.stem.replace('_', ' '))}.</b> {esc(caption(path))}</figcaption></figure>")


def html_page(head, recs, tables, failures, figures) -> str:
    """One page that fits 1200 px: the summary figure and the recommendations first, wide tables
    scroll inside their own box, every figure with a caption saying how to read it."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
             f"<title>optbench report</title><style>{_CSS}</style></head><body>"]
    title, *rest = head.strip().split("\n", 1)
    parts.append(f"<h1>{esc(title.lstrip('# '))}</h1>")
    summary = [p for p in figures if Path(p).stem == "summary"]
    parts += [_figure_html(Path(p)) for p in summary]
    parts.append("<h2>Recommendations</h2><ul>" + "".join(f"<li>{esc(r)}</li>" for r in recs) + "</ul>")
    for para in "\n".join(rest).strip().split("\n\n"):
        parts.append(f"<p>{esc(para)}</p>")
    for title, cols, body in tables:
        parts.append(f"<h2>{esc(title)}</h2><div class='scroll'><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table></div>")
    if failures:
        parts.append("<h2>Crashed trials and failed analyses</h2><ul>" + "".join(f"<li>{esc(f)}</li>" for f in failures)
                     + "</ul>")
    parts.append("<h2>Figures</h2>")
    parts += [_figure_html(Path(p)) for p in figures if Path(p).stem != "summary"]
    parts.append("<p><a href='results.csv'>results.csv</a> holds one row per trial with every metric.</p></body></html>")
    return "\n".join(parts)
