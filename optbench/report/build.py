"""Write results.csv, figures, report.md and a self-contained report.html from a study folder."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path

from optbench.io import read_json, write_text
from optbench.layout import StudyDir
from optbench.report.aggregate import StudyData, refinement_by_pair
from optbench.report.labels import human


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


def never_completed(data: StudyData, dataset: str) -> dict[str, list[str]]:
    """Optimizers none of whose trials on `dataset` completed -> the statuses of their trials."""
    by_opt: dict[str, list[str]] = {}
    for r in data.rows:
        if r["dataset"] == dataset:
            by_opt.setdefault(r["optimizer"], []).append(r["status"])
    return {opt: st for opt, st in by_opt.items() if "completed" not in st}


def _failed_sentence(dataset: str, failed: dict[str, list[str]]) -> str:
    parts = [f"{opt} ({', '.join(f'{st.count(s)} {s}' for s in dict.fromkeys(st))})" for opt, st in failed.items()]
    return f"{dataset}: every trial of {'; '.join(parts)} failed; not ranked."


EDGE = {"lowest": "the lowest of its grid", "highest": "the highest of its grid", "only": "the only LR tried"}


def _named(entry: dict) -> str:
    """'adam (lr 0.001)', or with the grid edge it sits on: 'adam (lr 0.004, the highest of its grid)'."""
    edge = entry.get("lr_edge")
    return f"{entry['optimizer']} (lr {entry['lr']:g}{'' if edge is None else ', ' + EDGE[edge]})"


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _verdict(test: dict | None) -> str:
    """What the paired test over seeds says about a ranking of two optimizers."""
    if test is None or test["n"] < 2:
        return "a single seed, so no test backs the ranking"
    if test["p_holm"] is None:
        return f"the {test['n']} paired seeds give identical differences, so no test is possible"
    sig = "significant" if test["p_holm"] < 0.05 else "not significant, so the ranking is not settled"
    return (f"paired t-test over {test['n']} seeds, Holm-adjusted over all optimizer pairs: p = {test['p_holm']:.3g}, "
            f"{sig} at the 5% level")


def _ranking(data: StudyData, ds: str, rows: list[dict], name: str, tag: str) -> list[str]:
    key = f"{tag}:{name}:forces_mae"
    ranked = sorted((r for r in rows if r.get(key, {}).get("mean") is not None), key=lambda r: r[key]["mean"])
    if len(ranked) < 2:
        return []
    best, second, worst = ranked[0], ranked[1], ranked[-1]
    tests = data.pairwise(f"final.{name}.forces_mae", ds)
    margin = second[key]["mean"] - best[key]["mean"]
    rel = 100 * margin / second[key]["mean"] if second[key]["mean"] else 0.0
    out = [f"{ds}, {tag} set '{name}': {_named(best)} gives the lowest force MAE (mean over {_seeds(best[key]['n'])}), "
           f"{best[key]['mean']:.1f} meV/Å, {margin:.1f} meV/Å ({rel:.0f}%) below {_named(second)}; "
           f"{_verdict(tests.get((best['optimizer'], second['optimizer'])))}.",
           f"{ds}, {tag} set '{name}': {_named(worst)} is last at {worst[key]['mean']:.1f} meV/Å "
           f"({worst[key]['mean'] / best[key]['mean']:.1f}x the best; "
           f"{_verdict(tests.get((worst['optimizer'], best['optimizer'])))})."]
    return out


def _time_to_target(data: StudyData, ds: str, rows: list[dict]) -> list[str]:
    ttt = [t for t in data.time_to_target_summary(ds) if t["optimizer"] != data.reference]
    if not ttt:
        return []
    out = []
    everywhere = sorted((t for t in ttt if t["n_reached"] == t["n_seeds"]), key=lambda t: t["steps"]["mean"])
    if everywhere:
        t = everywhere[0]
        entry = next((r for r in rows if r["optimizer"] == t["optimizer"]), {"optimizer": t["optimizer"], "lr": math.nan})
        if t["steps"]["ci"] is None:
            spread = f"{_seeds(t['n_seeds'])}, so no interval"
            steps, secs = f"{t['steps']['mean']:.0f}", f"{t['seconds']['mean']:.0f}"
        else:
            spread = f"mean ± 95% CI over {_seeds(t['n_seeds'])}"
            steps = f"{t['steps']['mean']:.0f} ± {t['steps']['ci']:.0f}"
            secs = f"{t['seconds']['mean']:.0f} ± {t['seconds']['ci']:.0f}"
        out.append(f"{ds}: of the optimizers that reach {data.reference}'s best validation force error in every seed, "
                   f"{_named(entry)} needs the fewest steps: {steps} steps, {secs} s ({spread}).")
    partial = sorted(f"{t['optimizer']} ({t['n_reached']} of {_seeds(t['n_seeds'])})" for t in ttt if t["n_reached"] < t["n_seeds"])
    if partial:
        out.append(f"{ds}: do not reach {data.reference}'s best validation force error within the budget in every seed: "
                   f"{', '.join(partial)}.")
    return out


def recommendations(data: StudyData) -> list[str]:
    """Sentences drawn from the numbers: who wins what, by how much, what a paired test over seeds
    (Holm-corrected) says about it, and whether the LR chosen sits at an edge of its grid. An optimizer
    with no completed trial on a dataset is named as failed there and never ranked."""
    out = []
    summary = data.summary()
    for ds in data.datasets:
        failed = never_completed(data, ds)
        if failed:
            out.append(_failed_sentence(ds, failed))
        rows = [s for s in summary if s["dataset"] == ds and s["optimizer"] not in failed]
        for name, tag in data.test_sets(ds).items():
            out += _ranking(data, ds, rows, name, tag)
        edges = [_named(r) for r in rows if r.get("lr_edge")]
        if edges:
            out.append(f"{ds}: LR chosen at an edge of its grid (or the only one tried), so a better LR may lie "
                       f"outside it: {', '.join(edges)}.")
        diverged = [r["optimizer"] for r in rows if r["diverged"]]
        if diverged:
            out.append(f"{ds}: unstable at the chosen LR: {', '.join(diverged)} diverged in at least one seed.")
        out += _time_to_target(data, ds, rows)
        pairs = refinement_by_pair(data.refinement_gain(ds))
        if pairs:
            better = sum(g["change_pct"] < 0 for g in pairs)
            mean = sum(g["change_pct"] for g in pairs) / len(pairs)
            out.append(f"{ds}: L-BFGS refinement lowered the seed-mean force MAE in {better} of {len(pairs)} "
                       f"optimizer/test-set pairs (mean change {mean:+.1f}%).")
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
        head = ["optimizer", "learning rate", "LR grid edge", "seeds", "diverged", *[human(k) for k in keys], "wall time (s)"]
        body = [[r["optimizer"], f"{r['lr']:g}", r["lr_edge"] or "no", str(r["n_seeds"]), str(r["diverged"]),
                 *[_fmt(r[k]) for k in keys], _fmt(r["wall_time_s"], 0)] for r in rows]
        tables.append((f"{ds}: errors at the selected LR (mean ± 95% CI over seeds; meV/Å, meV/atom)", head, body))
        paired = data.paired(f"final.{next(iter(data.test_sets(ds)), 'valid')}.forces_mae", ds)
        if paired:
            tables.append((f"{ds}: paired difference of the first test set's force MAE vs {data.reference} (meV/Å)",
                           ["optimizer", "mean diff (meV/Å)", "95% CI (meV/Å)", "seeds", "p (paired t)", "p (Holm)",
                            "significant (Holm 5%)"],
                           [[p["optimizer"], "–" if p["mean_diff"] is None else f"{p['mean_diff']:+.1f}",
                             "–" if p["ci"] is None else f"±{p['ci']:.1f}", str(p["n"]),
                             "–" if p["p_value"] is None else f"{p['p_value']:.3f}",
                             "–" if p["p_holm"] is None else f"{p['p_holm']:.3f}", "yes" if p["significant"] else "no"]
                            for p in paired]))
        ttt = data.time_to_target_summary(ds)
        if ttt:
            tables.append((f"{ds}: time to {data.reference}'s best validation force MAE of the same seed "
                           "(mean ± 95% CI over the seeds that reach it)",
                           ["optimizer", "target (meV/Å)", "seeds reaching it", "steps", "wall time (s)"],
                           [[t["optimizer"], _fmt(t["target_meV_A"]), f"{t['n_reached']} of {t['n_seeds']}",
                             _fmt(t["steps"], 0) if t["n_reached"] else "not reached",
                             _fmt(t["seconds"], 1) if t["n_reached"] else "–"] for t in ttt]))
        fg = _forgetting_table(data, ds)
        if fg:
            tables.append(fg)
        props = property_columns(data.selected(ds))
        if props:
            tables.append((f"{ds}: property errors vs reference ({UNRESOLVED})", ["optimizer", "seed", *[human(p) for p in props]],
                           [[r["optimizer"], str(r["seed"]), *[property_cell(r, p) for p in props]]
                            for r in data.selected(ds)]))
    return tables


def _forgetting_table(data: StudyData, ds: str) -> tuple[str, list[str], list[list[str]]] | None:
    """Drift vs the pretrained model: built-in probe set first, then each other dataset."""
    rows = [r for r in data.selected(ds) if r.get("forgetting_forces_rms_meV_A") is not None]
    if not rows:
        return None
    tails = [""] + sorted({k[len("forgetting_forces_rms_meV_A"):] for r in rows for k in r
                           if k.startswith("forgetting_forces_rms_meV_A[")})
    head = ["optimizer", "seed"]
    for t in tails:
        where = "probe set" if not t else t.strip("[]")
        head += [f"{where}: energy drift (meV/atom)", f"{where}: force RMS change (meV/Å)"]
    body = []
    for r in rows:
        cells = [r["optimizer"], str(r["seed"])]
        for t in tails:
            for key in (f"forgetting_energy_rms_meV_atom{t}", f"forgetting_forces_rms_meV_A{t}"):
                cells.append("–" if r.get(key) is None else f"{r[key]:.1f}")
        body.append(cells)
    title = (f"{ds}: forgetting, change vs the pretrained model's own predictions (energy after removing the "
             "best per-element offset, i.e. the E0 refit; built-in probe set of crystals, molecules and slabs, "
             "and the study's other datasets)")
    return title, head, body


PROTOCOL = ("Protocol: every optimizer gets the same number of trials (one per learning rate of its grid and seed) "
            "and the same step budget. The learning rate of each optimizer is chosen on the validation split (the "
            "dataset's own, or one carved from the training set; weighted validation loss, mean over seeds), never on a test set. Test errors are "
            "reported at that learning rate as mean and 95% t-interval over seeds; optimizers are ranked by paired t-tests "
            "over seeds (same seed, same test set), Holm-corrected for the number of comparisons. Errors: forces meV/Å (MAE over "
            "components), energies meV/atom.")


def build_report(folder: str | Path) -> dict[str, Path]:
    """Rebuild every report file of a study folder from its stored results alone."""
    from optbench.report.figures import all_figures, caption

    data = StudyData(folder)
    study = data.study
    fig_dir = study.figures_dir
    figures = all_figures(data, fig_dir)
    csv_path = write_csv(data, study.results_csv)
    recs = recommendations(data)
    tables = _tables(data)
    n_done = sum(r["status"] == "completed" for r in data.rows)
    crashed = [r for r in data.rows if r["status"] == "crashed"]
    head = (f"# optbench study: {data.index.get('name', 'study')}\n\n{len(data.rows)} trials "
            f"({n_done} completed, {sum(r['status'] == 'diverged' for r in data.rows)} diverged, {len(crashed)} crashed); "
            f"reference optimizer {data.reference}.\n\n{PROTOCOL}\n")
    summary = [f"![summary]({fig_dir.name}/{p.name})\n\n*{caption(p)}*\n" for p in figures if p.stem == "summary"]
    md = [head, *summary, "## Recommendations\n", *[f"- {r}" for r in recs], ""]
    for title, cols, body in tables:
        md += [f"## {title}\n", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(row) + " |" for row in body]
        md.append("")
    failures = [*(f"trial {r['trial']} ({r['optimizer']}, lr {r['lr']:g}): {r['error']}{_traceback_note(study, r)}"
                  for r in crashed), *failed_analyses(study.path)]
    if failures:
        md += ["## Crashed trials and failed analyses\n", *[f"- {f}" for f in failures], ""]
    md += ["## Figures\n", *[f"![{p.stem}]({fig_dir.name}/{p.name})\n\n*{caption(p)}*\n" for p in figures], ""]
    md_path = write_text(study.report_md, "\n".join(md))
    html_path = write_text(study.report_html, _html(data, head, recs, tables, failures, figures))
    return {"csv": csv_path, "md": md_path, "html": html_path, "figures": fig_dir}


def _traceback_note(study, row: dict) -> str:
    path = study.trial(row["trial"]).error_path
    return f" (traceback: {path.relative_to(study.path)})" if path.is_file() else ""


def failed_analyses(folder: Path) -> list[str]:
    """'<analysis>: <error> (traceback: <file>)' for each analysis whose last try failed (a
    `.failed.json` without the result a later try wrote), paths relative to the study folder."""
    out = []
    analyses = StudyDir(folder).analyses_dir
    for path in sorted(analyses.rglob("*.failed.json")):
        if path.with_name(path.name.replace(".failed.json", ".json")).exists():
            continue
        record = read_json(path)
        where = path.relative_to(analyses).with_name(path.name.replace(".failed.json", ""))
        error_file = path.parent / str(record.get("error_file") or "")
        note = f" (traceback: {error_file.relative_to(folder)})" if record.get("error_file") and error_file.is_file() else ""
        out.append(f"{where}: {record.get('error')}{note}")
    return out


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
    from optbench.report.figures import caption

    esc = html.escape
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    return (f"<figure id='fig-{esc(path.stem)}'><img alt='{esc(path.stem)}' src='data:image/png;base64,{b64}'>"
            f"<figcaption><b>{esc(path.stem.replace('_', ' '))}.</b> {esc(caption(path))}</figcaption></figure>")


def _html(data, head, recs, tables, failures, figures) -> str:
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
