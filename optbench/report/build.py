"""Write results.csv, figures, report.md and a self-contained report.html from a study folder."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from optbench.io import write_text
from optbench.study.aggregate import StudyData


def _fmt(stat: dict | None, digits: int = 1) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    s = f"{stat['mean']:.{digits}f}"
    return s + (f" ± {stat['ci']:.{digits}f}" if stat.get("ci") is not None else "")


def write_csv(data: StudyData, path: Path) -> Path:
    """One row per trial, every metric a column."""
    cols = list(dict.fromkeys(k for r in data.rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for r in data.rows:
        writer.writerow({k: r.get(k) for k in cols})
    return write_text(path, buf.getvalue())


def recommendations(data: StudyData) -> list[str]:
    """Sentences drawn from the numbers: who wins what, by how much, and whether the CI separates it."""
    out = []
    summary = data.summary()
    for ds in data.datasets:
        rows = [s for s in summary if s["dataset"] == ds]
        for name, tag in data.test_sets(ds).items():
            key = f"{tag}:{name}:forces_mae"
            ranked = sorted((r for r in rows if r.get(key, {}).get("mean") is not None), key=lambda r: r[key]["mean"])
            if len(ranked) < 2:
                continue
            best, second = ranked[0], ranked[1]
            margin = second[key]["mean"] - best[key]["mean"]
            rel = 100 * margin / second[key]["mean"] if second[key]["mean"] else 0.0
            sep = best[key]["ci"] is not None and second[key]["ci"] is not None and margin > best[key]["ci"] + second[key]["ci"]
            verdict = ("the 95% intervals separate them" if sep else
                       "the 95% intervals overlap, so the ranking is not settled" if best[key]["ci"] is not None else
                       "a single seed, so no interval backs the ranking")
            out.append(f"{ds}, {tag} set '{name}': {best['optimizer']} (lr {best['lr']:g}) gives the lowest force MAE, "
                       f"{best[key]['mean']:.1f} meV/Å, {margin:.1f} meV/Å ({rel:.0f}%) below {second['optimizer']}; {verdict}.")
            worst = ranked[-1]
            out.append(f"{ds}, {tag} set '{name}': {worst['optimizer']} is last at {worst[key]['mean']:.1f} meV/Å "
                       f"({worst[key]['mean'] / best[key]['mean']:.1f}x the best).")
        diverged = [r["optimizer"] for r in rows if r["diverged"]]
        if diverged:
            out.append(f"{ds}: unstable at the chosen LR: {', '.join(diverged)} diverged in at least one seed.")
        ttt = [t for t in data.time_to_target(ds) if t["optimizer"] != data.reference]
        reached = sorted((t for t in ttt if t["steps"] is not None), key=lambda t: t["steps"])
        if ttt:
            missed = sorted({t["optimizer"] for t in ttt if t["steps"] is None})
            if reached:
                out.append(f"{ds}: {reached[0]['optimizer']} reaches {data.reference}'s best validation force error "
                           f"fastest ({reached[0]['steps']} steps, {reached[0]['seconds']:.0f} s).")
            if missed:
                out.append(f"{ds}: never reach {data.reference}'s best validation force error within the budget: {', '.join(missed)}.")
        gains = data.refinement_gain(ds)
        if gains:
            better = sum(g["change_pct"] < 0 for g in gains)
            mean = sum(g["change_pct"] for g in gains) / len(gains)
            out.append(f"{ds}: L-BFGS refinement lowered the force MAE in {better} of {len(gains)} optimizer/test-set "
                       f"pairs (mean change {mean:+.1f}%).")
    return out


UNRESOLVED = ("n.r.: not resolved, the model-reference difference is within 2 sigma of their combined "
              "block-average statistical error, so it is not ranked")


def property_columns(rows: list[dict]) -> list[str]:
    """Numeric property keys worth a column; statistical errors and flags are folded into the cells."""
    skip = (".resolved", ".err", "_err")
    return sorted({k for r in rows for k in r if k.startswith("property.") and isinstance(r[k], (int, float))
                   and not isinstance(r[k], bool) and not k.endswith(skip)})


def property_cell(row: dict, key: str) -> str:
    """A property error as printed: 'n.r.' for a difference that the statistical errors do not resolve."""
    value = row.get(key)
    if value is None:
        return "–"
    if key.endswith((".abs", ".rel")) and row.get(key.rsplit(".", 1)[0] + ".resolved") is False:
        return "n.r."
    return f"{value:.3g}"


def _tables(data: StudyData) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    summary = data.summary()
    for ds in data.datasets:
        rows = [s for s in summary if s["dataset"] == ds]
        if not rows:
            continue
        keys = [k for k in rows[0] if ":" in k]
        head = ["optimizer", "lr", "seeds", "diverged", *[k.replace(":", " ").replace("_", " ") for k in keys], "time (s)"]
        body = [[r["optimizer"], f"{r['lr']:g}", str(r["n_seeds"]), str(r["diverged"]),
                 *[_fmt(r[k]) for k in keys], _fmt(r["wall_time_s"], 0)] for r in rows]
        tables.append((f"{ds}: errors at the selected LR (mean ± 95% CI over seeds; meV/Å, meV/atom)", head, body))
        paired = data.paired(f"final.{next(iter(data.test_sets(ds)), 'valid')}.forces_mae", ds)
        if paired:
            tables.append((f"{ds}: paired difference of the first test set's force MAE vs {data.reference} (meV/Å)",
                           ["optimizer", "mean diff", "95% CI", "n", "p", "separated"],
                           [[p["optimizer"], "–" if p["mean_diff"] is None else f"{p['mean_diff']:+.1f}",
                             "–" if p["ci"] is None else f"±{p['ci']:.1f}", str(p["n"]),
                             "–" if p["p_value"] is None else f"{p['p_value']:.3f}", "yes" if p["separated"] else "no"]
                            for p in paired]))
        ttt = data.time_to_target(ds)
        if ttt:
            tables.append((f"{ds}: time to {data.reference}'s best validation force MAE",
                           ["optimizer", "seed", "target (meV/Å)", "steps", "seconds"],
                           [[t["optimizer"], str(t["seed"]), f"{t['target_meV_A']:.1f}",
                             "not reached" if t["steps"] is None else str(t["steps"]),
                             "–" if t["seconds"] is None else f"{t['seconds']:.1f}"] for t in ttt]))
        fg = [r for r in data.selected(ds) if r.get("forgetting.force_rms_meV_A") is not None]
        if fg:
            tables.append((f"{ds}: forgetting on structures outside the fine-tuning regime (change vs pretrained)",
                           ["optimizer", "seed", "force RMS (meV/Å)", "energy RMS (meV/atom)"],
                           [[r["optimizer"], str(r["seed"]), f"{r['forgetting.force_rms_meV_A']:.1f}",
                             f"{r['forgetting.energy_rms_meV_atom']:.1f}"] for r in fg]))
        props = property_columns(data.selected(ds))
        if props:
            tables.append((f"{ds}: property errors vs reference ({UNRESOLVED})", ["optimizer", "seed", *[p[9:] for p in props]],
                           [[r["optimizer"], str(r["seed"]), *[property_cell(r, p) for p in props]]
                            for r in data.selected(ds)]))
    return tables


PROTOCOL = ("Protocol: every optimizer gets the same number of trials (one per learning rate of its grid and seed) "
            "and the same step budget. The learning rate of each optimizer is chosen on the validation split (the "
            "dataset's own, or one carved from the training set; weighted validation loss, mean over seeds), never on a test set. Test errors are "
            "reported at that learning rate as mean and 95% t-interval over seeds. Errors: forces meV/Å (MAE over "
            "components), energies meV/atom.")


def build_report(folder: str | Path) -> dict[str, Path]:
    """Rebuild every report file of a study folder from its stored results alone."""
    from optbench.report.figures import all_figures

    folder = Path(folder)
    data = StudyData(folder)
    fig_dir = folder / "figures"
    figures = all_figures(data, fig_dir)
    csv_path = write_csv(data, folder / "results.csv")
    recs = recommendations(data)
    tables = _tables(data)
    n_done = sum(r["status"] == "completed" for r in data.rows)
    crashed = [r for r in data.rows if r["status"] == "crashed"]
    head = (f"# optbench study: {data.index.get('name', 'study')}\n\n{len(data.rows)} trials "
            f"({n_done} completed, {sum(r['status'] == 'diverged' for r in data.rows)} diverged, {len(crashed)} crashed); "
            f"reference optimizer {data.reference}.\n\n{PROTOCOL}\n")
    md = [head, "## Recommendations\n", *[f"- {r}" for r in recs], ""]
    for title, cols, body in tables:
        md += [f"## {title}\n", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(row) + " |" for row in body]
        md.append("")
    if crashed:
        md += ["## Crashed trials\n", *[f"- {r['trial']} ({r['optimizer']}, lr {r['lr']:g}): {r['error']}" for r in crashed], ""]
    md += ["## Figures\n", *[f"![{p.stem}](figures/{p.name})" for p in figures], ""]
    md_path = write_text(folder / "report.md", "\n".join(md))
    html_path = write_text(folder / "report.html", _html(data, head, recs, tables, crashed, figures))
    return {"csv": csv_path, "md": md_path, "html": html_path, "figures": fig_dir}


def _html(data, head, recs, tables, crashed, figures) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>optbench report</title><style>",
             "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
             "td:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
             "h2{border-bottom:1px solid #ddd;padding-bottom:.2em}</style></head><body>"]
    title, *rest = head.strip().split("\n", 1)
    parts.append(f"<h1>{esc(title.lstrip('# '))}</h1>")
    for para in "\n".join(rest).strip().split("\n\n"):
        parts.append(f"<p>{esc(para)}</p>")
    parts.append("<h2>Recommendations</h2><ul>" + "".join(f"<li>{esc(r)}</li>" for r in recs) + "</ul>")
    for title, cols, body in tables:
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
    if crashed:
        parts.append("<h2>Crashed trials</h2><ul>" + "".join(
            f"<li>{esc(r['trial'])} ({esc(r['optimizer'])}): {esc(str(r['error']))}</li>" for r in crashed) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for p in figures:
        b64 = base64.b64encode(Path(p).read_bytes()).decode()
        parts.append(f"<figure><img alt='{esc(p.stem)}' src='data:image/png;base64,{b64}'><figcaption>{esc(p.stem)}</figcaption></figure>")
    parts.append("<p><a href='results.csv'>results.csv</a> holds one row per trial with every metric.</p></body></html>")
    return "\n".join(parts)
