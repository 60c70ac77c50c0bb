"""claims.md: the verdict on each of the paper's three claims per regime, the numbers that decide it, and
what else the study found (chosen LRs and grid edges, time to target, forgetting). Definitions of the
claims and of the tests: optbench.report.claims."""

from __future__ import annotations

from optbench.report.aggregate import StudyData, mean_ci
from optbench.report.claims import CLAIMS, decide_claims
from optbench.report.labels import human
from optbench.report.recommend import EDGE

CLAIMS_MD = "claims.md"  # beside report.md in the study folder
INTRO = ("The three claims of arXiv 2512.05489 (Beyond Adam), each decided per regime from this study's numbers: "
         "confirmed, refuted, or not separable at the number of seeds the study ran (or not tested when the study "
         "lacks what a claim needs). Tests are paired t-tests over seeds (claim 3: over trials; the divergence part "
         "of claim 2: Fisher's exact test), Holm-corrected over the tests of one part of a claim in one regime, "
         "deciding at p < 0.05; a negative difference favours the claim. Operational definitions: "
         "`optbench/report/claims.py`.")


def _num(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _stat(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return _num(stat["mean"]) + ("" if stat.get("ci") is None else f" ± {_num(stat['ci'], 2)}") + f" (n={stat['n']})"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *["| " + " | ".join(r) + " |" for r in rows], ""]


def _tests(tests: list[dict]) -> list[str]:
    rows = [[f"{t['a']} − {t['b']}", _num(t.get("mean_diff")), "–" if t.get("ci") is None else f"±{_num(t['ci'], 2)}",
             str(t.get("n", "–")), _num(t.get("p_value"), 2), _num(t.get("p_holm"), 2)] for t in tests]
    return _table(["difference", "mean", "95% CI", "n", "p", "p (Holm)"], rows) if rows else []


def _part(name: str, part: dict) -> list[str]:
    metric = human(part["metric"]) if "." in part.get("metric", "") else part.get("metric", "")
    out = [f"*{name}* ({metric}{', compared as log10' if part.get('scale') == 'log10' else ''}): "
           f"**{part['verdict']}**", ""]
    if part.get("means"):
        extra = {k: part.get(k) or {} for k in ("reached", "diverged", "seed_spread_meV_A")}
        cols = [c for c in extra if extra[c]]
        out += _table(["optimizer", "mean ± 95% CI (n)", *[c.replace("_", " ") for c in cols]],
                      [[o, _stat(s), *[str(extra[c].get(o, "–")) if c != "seed_spread_meV_A" else _num(extra[c].get(o))
                                       for c in cols]] for o, s in part["means"].items()])
    elif part.get("diverged"):
        out += _table(["optimizer", "diverged trials", "seed spread of ID force MAE (meV/Å)"],
                      [[o, d, _num(part["seed_spread_meV_A"].get(o))] for o, d in part["diverged"].items()])
    if part.get("ratio") is not None:
        lo, hi = part["ratio_interval"] or (None, None)
        out += [f"{part['trials']} trials, {len(part['quantities'])} property errors; geometric-mean ratio of the errors "
                f"refined/final {_num(part['ratio'])} (95% interval {_num(lo)}–{_num(hi)}): "
                + ", ".join(part["quantities"]), ""]
    return out + _tests(part.get("tests", []))


def verdict_table(decisions: dict) -> tuple[str, list[str], list[list[str]]]:
    """The report's table: one row per regime, one column per claim."""
    head = ["regime", *[f"{n}. {text}" for n, text in CLAIMS.items()]]
    rows = []
    for ds, claims in decisions.items():
        cells = [claims[n]["verdict"] for n in CLAIMS]
        prop = claims[3]["parts"].get("properties", {})
        if prop.get("ratio") is not None:
            cells[2] += f" (errors x{prop['ratio']:.2f} after refinement)"
        rows.append([ds, *cells])
    return "The paper's three claims per regime (the numbers that decide them: claims.md)", head, rows


def _findings(data: StudyData, ds: str) -> list[str]:
    out = [f"### {ds}", ""]
    summary = [s for s in data.summary() if s["dataset"] == ds]
    out += _table(["optimizer", "selected LR", "grid", "at a grid edge"],
                  [[s["optimizer"], f"{s['lr']:g}", ", ".join(f"{x:g}" for x in s["lr_grid"]),
                    EDGE[s["lr_edge"]] if s["lr_edge"] else "no"] for s in summary])
    ttt = data.time_to_target_summary(ds)
    if ttt:
        out += [f"Time to {data.reference}'s best validation force MAE of the same seed:", ""]
        out += _table(["optimizer", "seeds reaching it", "steps (mean ± 95% CI)", "seconds"],
                      [[t["optimizer"], f"{t['n_reached']} of {t['n_seeds']}", _stat(t["steps"]), _stat(t["seconds"])]
                       for t in ttt])
    forget = {o: mean_ci(r.get("forgetting_forces_rms_meV_A") for r in data.selected(ds, o)) for o in data.optimizers}
    if any(f["n"] for f in forget.values()):
        out += ["Forgetting on the built-in probe set (force RMS change vs the pretrained model, meV/Å):", ""]
        out += _table(["optimizer", "mean ± 95% CI (n)"], [[o, _stat(f)] for o, f in forget.items() if f["n"]])
    return out


def claims_markdown(data: StudyData, decisions: dict | None = None) -> str:
    decisions = decide_claims(data) if decisions is None else decisions
    title, head, rows = verdict_table(decisions)
    md = [f"# The paper's claims: {data.index.get('name', 'study')}", "", INTRO, "", *_table(head, rows)]
    for n, text in CLAIMS.items():
        md += [f"## Claim {n}: {text}", ""]
        for ds, claims in decisions.items():
            md += [f"### {ds}: {claims[n]['verdict']}", ""]
            for name, part in claims[n]["parts"].items():
                md += _part(name, part)
    md += ["## What else the study found", ""]
    for ds in data.datasets:
        md += _findings(data, ds)
    return "\n".join(md)
