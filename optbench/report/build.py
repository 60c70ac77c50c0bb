"""Write results.csv, figures, report.md and a self-contained report.html from a study folder."""

from __future__ import annotations

from pathlib import Path

from optbench.io import read_json, write_text
from optbench.layout import StudyDir
from optbench.report.aggregate import StudyData
from optbench.report.claims import decide_claims
from optbench.report.claims_text import CLAIMS_MD, claims_markdown, verdict_table
from optbench.report.recommend import EDGE, never_completed, recommendations
from optbench.report.tables import UNRESOLVED, property_cell, property_columns, tables, write_csv

# names other modules and tests import from here
__all__ = ["EDGE", "UNRESOLVED", "build_report", "failed_analyses", "never_completed", "property_cell",
           "property_columns", "recommendations", "write_csv"]


PROTOCOL = ("Protocol: every optimizer gets the same number of trials (one per learning rate of its grid and seed) "
            "and the same step budget. The learning rate of each optimizer is chosen on the validation split (the "
            "dataset's own, or one carved from the training set; weighted validation loss, mean over seeds), never on a test set. Test errors are "
            "reported at that learning rate as mean and 95% t-interval over seeds; optimizers are ranked by paired t-tests "
            "over seeds (same seed, same test set), Holm-corrected for the number of comparisons. Errors: forces meV/Å (MAE over "
            "components), energies meV/atom.")


def build_report(folder: str | Path) -> dict[str, Path]:
    """Rebuild every report file of a study folder from its stored results alone."""
    from optbench.report.figures import all_figures, caption
    from optbench.report.html import html_page

    data = StudyData(folder)
    study = data.study
    fig_dir = study.figures_dir
    figures = all_figures(data, fig_dir)
    csv_path = write_csv(data, study.results_csv)
    recs = recommendations(data)
    decisions = decide_claims(data)
    tabs = [verdict_table(decisions), *tables(data)]
    claims_path = write_text(study.path / CLAIMS_MD, claims_markdown(data, decisions))
    n_done = sum(r["status"] == "completed" for r in data.rows)
    crashed = [r for r in data.rows if r["status"] == "crashed"]
    head = (f"# optbench study: {data.index.get('name', 'study')}\n\n{len(data.rows)} trials "
            f"({n_done} completed, {sum(r['status'] == 'diverged' for r in data.rows)} diverged, {len(crashed)} crashed); "
            f"reference optimizer {data.reference}.\n\n{PROTOCOL}\n")
    summary = [f"![summary]({fig_dir.name}/{p.name})\n\n*{caption(p)}*\n" for p in figures if p.stem == "summary"]
    md = [head, *summary, "## Recommendations\n", *[f"- {r}" for r in recs], ""]
    for title, cols, body in tabs:
        md += [f"## {title}\n", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(row) + " |" for row in body]
        md.append("")
    failures = [*(f"trial {r['trial']} ({r['optimizer']}, lr {r['lr']:g}): {r['error']}{_traceback_note(study, r)}"
                  for r in crashed), *failed_analyses(study.path)]
    if failures:
        md += ["## Crashed trials and failed analyses\n", *[f"- {f}" for f in failures], ""]
    md += ["## Figures\n", *[f"![{p.stem}]({fig_dir.name}/{p.name})\n\n*{caption(p)}*\n" for p in figures], ""]
    md_path = write_text(study.report_md, "\n".join(md))
    html_path = write_text(study.report_html, html_page(head, recs, tabs, failures, figures))
    return {"csv": csv_path, "md": md_path, "html": html_path, "figures": fig_dir, "claims": claims_path}


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
