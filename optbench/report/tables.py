"""The report's tables (title, header, rows of printed cells) and results.csv, one row per trial."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from optbench.io import write_text
from optbench.report.aggregate import StudyData
from optbench.report.labels import human
from optbench.report.strategy_axis import Point, panels, ranked

Table = tuple[str, list[str], list[list[str]]]


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


def tables(data: StudyData) -> list[Table]:
    """Per dataset: strategy x optimizer (a study with strategies), errors at the selected LR, paired
    differences, time to target, forgetting, properties."""
    tables = []
    summary = data.summary()
    by_strategy = panels(data)
    for ds in data.datasets:
        tables += [strategy_table(t, pts) for t, pts in by_strategy.items() if pts[0].dataset == ds]
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
                           [[data.arm(r), str(r["seed"]), *[property_cell(r, p) for p in props]]
                            for r in data.selected(ds)]))
    return tables


def _forgetting_table(data: StudyData, ds: str) -> Table | None:
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
        cells = [data.arm(r), str(r["seed"])]
        for t in tails:
            for key in (f"forgetting_energy_rms_meV_atom{t}", f"forgetting_forces_rms_meV_A{t}"):
                cells.append("–" if r.get(key) is None else f"{r[key]:.1f}")
        body.append(cells)
    title = (f"{ds}: forgetting, change vs the pretrained model's own predictions (energy after removing the "
             "best per-element offset, i.e. the E0 refit; built-in probe set of crystals, molecules and slabs, "
             "and the study's other datasets)")
    return title, head, body


def strategy_table(title: str, points: list[Point]) -> Table:
    """One panel of the strategy axis: strategy rows x optimizer columns, each cell the force MAE and
    the probe-set force drift (mean ± 95% CI over seeds, meV/Å), the best force MAE and the pairs on
    the accuracy-forgetting Pareto front marked."""
    optimizers = list(dict.fromkeys(p.optimizer for p in points))
    cells = {(p.strategy, p.optimizer): p for p in points}
    best = next(iter(ranked(points)), None)

    def cell(p: Point | None) -> str:
        if p is None:
            return "–"
        text = f"{_fmt(p.accuracy)}; drift {_fmt(p.forgetting)}"
        marks = [m for m, on in (("best", p is best), ("front", p.pareto)) if on]
        if p.failed:
            marks.append(f"{p.failed} of {p.n_seeds} seeds failed")
        return text + (f" ({', '.join(marks)})" if marks else "")

    head = ["strategy", *[f"{o}: force MAE; drift (meV/Å)" for o in optimizers]]
    body = [[s, *[cell(cells.get((s, o))) for o in optimizers]] for s in dict.fromkeys(p.strategy for p in points)]
    return (f"{title}: strategy x optimizer, {points[0].test_set} force MAE and probe-set force drift vs the "
            "pretrained model at the selected LR (mean ± 95% CI over seeds, meV/Å; best: lowest force MAE; front: "
            "on the accuracy-forgetting Pareto front)", head, body)
