"""The three claims of arXiv 2512.05489, decided per regime (dataset) from a study's stored numbers.

A verdict is "confirmed", "refuted", "not separable at N seeds" (the tests cannot tell them apart at this
number of seeds), or "not tested: <why>" (the study lacks what the claim needs). Each test is the report's
paired t-test (`optbench.report.aggregate.paired_test`: mean difference, 95% t-interval, two-sided p) over
seeds or trials, Holm-corrected (`holm`) over the tests of one part of a claim in one regime; a difference
counts at Holm-adjusted p < 0.05. Every difference below is written so that a negative value favours the
claim. A part is confirmed when every one of its tests favours the claim significantly, refuted when any
test goes significantly against it; a claim is refuted when one of its parts is, else not separable when
one is, else not tested when one is, else confirmed.

Claim 1, "AdamW and ScheduleFree give the best curvature conditioning and accuracy":
- accuracy: the ID force MAE (meV/Å; the first test set tagged ID) after first-order training (`final`)
  at each optimizer's selected LR; adamw and schedulefree each against every other optimizer, paired over
  seeds (candidate minus other);
- conditioning: log10 of the condition number of the preconditioned Hessian P^1/2 H P^1/2 at the `final`
  checkpoint: lambda_max/lambda_min where the Lanczos bounds converged for every trial analysed in the
  regime, else lambda_1/lambda_k of its top k eigenvalues; the same comparisons (a study that analyses the
  curvature of the first seed only has one value per optimizer: not separable at 1 seed).
Claim 2, "SGD converges slowly and is unstable":
- slow: steps to reach the reference optimizer's best validation force MAE of the same seed (the report's
  time to target; a seed that never reaches it counts with the steps it ran, a lower bound), the mean over
  the other optimizers minus SGD's, paired over seeds;
- unstable: the share of diverged trials over every LR and seed, the other optimizers' minus SGD's,
  Fisher's exact test. The seed spread (standard deviation over seeds of the ID force MAE at the selected
  LR) is given beside it, not tested: three seeds give no useful test of a variance.
Claim 3, "a short L-BFGS refinement improves physical property accuracy": per selected trial, the mean over
the regime's property errors (|error| of each scalar such as B0 or C11, the MAE of phonon or vibrational
frequencies, the RDF difference; an MD difference the statistical errors do not resolve is left out) of
log10 |error|, refined minus final (the weights before refinement; the study needs `properties: [final,
refined]`), paired over trials (optimizers x seeds). 10^difference is the geometric-mean ratio of the
errors, refined over final.
"""

from __future__ import annotations

import math

import numpy as np

from optbench.report.aggregate import StudyData, holm, mean_ci, paired_test

CONFIRMED, REFUTED, NOT_TESTED = "confirmed", "refuted", "not tested"
ALPHA = 0.05
CANDIDATES = ("adamw", "schedulefree")  # claim 1
SGD = "sgd"  # claim 2
CLAIMS = {1: "AdamW and ScheduleFree give the best curvature conditioning and accuracy",
          2: "SGD converges slowly and is unstable",
          3: "a short L-BFGS refinement improves physical property accuracy"}
KAPPA = "curvature.final.preconditioned.condition_number"
ERROR_LEAVES = ("abs", "MAE_cm1", "C_MAE_GPa", "high_symmetry_MAE_THz", "rdf_OO_mean_abs_diff")


def not_separable(n: int) -> str:
    return f"not separable at {n} seed" + ("" if n == 1 else "s")


def not_tested(why: str) -> str:
    return f"{NOT_TESTED}: {why}"


def decide(tests: list[dict], n_seeds: int) -> str:
    """The verdict of one part from its tests (each with mean_diff, negative favouring the claim, and p_holm)."""
    sig = [t for t in tests if t.get("p_holm") is not None and t["p_holm"] < ALPHA and t.get("mean_diff") is not None]
    if any(t["mean_diff"] > 0 for t in sig):
        return REFUTED
    if tests and len(sig) == len(tests):
        return CONFIRMED
    return not_separable(n_seeds)


def combine(parts: dict[str, dict]) -> str:
    verdicts = [p["verdict"] for p in parts.values()]
    for kind in (REFUTED, "not separable", NOT_TESTED):
        hit = next((v for v in verdicts if v.startswith(kind)), None)
        if hit is not None:
            return hit
    return CONFIRMED


def _holm(tests: list[dict]) -> list[dict]:
    for test, p in zip(tests, holm([t.get("p_value") for t in tests])):
        test["p_holm"] = p
    return tests


def _seeds(data: StudyData, dataset: str) -> int:
    return len({r["seed"] for r in data.selected(dataset)})


def _present(data: StudyData, dataset: str) -> list[str]:
    return [o for o in data.optimizers if data.selected(dataset, o)]


def id_set(data: StudyData, dataset: str) -> str:
    """The first test set tagged ID (the first test set when none is)."""
    tags = data.test_sets(dataset)
    return next((name for name, tag in tags.items() if tag == "ID"), next(iter(tags), "valid"))


def _finite(v, positive: bool = False) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not positive)


def versus(data: StudyData, dataset: str, key: str, candidates, others, log: bool = False) -> dict:
    """Each candidate against each other optimizer on one metric (lower is better), paired over seeds."""
    def values(opt):
        raw = data.by_seed(key, dataset, opt)
        return {k: (math.log10(v) if log else v) for k, v in raw.items() if _finite(v, positive=log)}

    vals = {o: values(o) for o in (*candidates, *others)}
    tests = _holm([{"a": c, "b": o, **paired_test(vals[c], vals[o])} for c in candidates for o in others])
    means = {o: mean_ci(data.by_seed(key, dataset, o).values()) for o in (*candidates, *others)}
    n = max((t["n"] for t in tests), default=0)  # seeds both sides of a test have
    verdict = decide(tests, n) if n else not_tested(f"no values of {key} for the optimizers compared")
    return {"metric": key, "scale": "log10" if log else "linear", "means": means, "tests": tests, "verdict": verdict}


def _kappa_key(data: StudyData, dataset: str) -> str | None:
    rows = [r for r in data.selected(dataset) if r.get("curvature.final.preconditioned.lambda_max") is not None]
    if not rows:
        return None
    if all(r.get(KAPPA) is not None for r in rows):
        return KAPPA
    return KAPPA + "_top_k" if any(r.get(KAPPA + "_top_k") is not None for r in rows) else None


def claim1(data: StudyData, dataset: str) -> dict:
    opts = _present(data, dataset)
    cands, others = [o for o in CANDIDATES if o in opts], [o for o in opts if o not in CANDIDATES]
    if not cands or not others:
        return {"verdict": not_tested("needs adamw or schedulefree and at least one other optimizer"), "parts": {}}
    parts = {"accuracy": versus(data, dataset, f"final.{id_set(data, dataset)}.forces_mae", cands, others)}
    key = _kappa_key(data, dataset)
    parts["conditioning"] = versus(data, dataset, key, cands, others, log=True) if key else {
        "verdict": not_tested("no converged condition number of P^1/2 H P^1/2 at the final checkpoint"), "tests": []}
    return {"verdict": combine(parts), "parts": parts}


def _slow(data: StudyData, dataset: str, others: list[str]) -> dict:
    ran = {(r["optimizer"], r["backbone"], r["seed"]): r.get("steps") for r in data.selected(dataset)}
    steps: dict[str, dict] = {}
    reached: dict[str, list[bool]] = {}
    for t in data.time_to_target(dataset):
        key = (t["backbone"], t["seed"])
        value = t["steps"] if t["steps"] is not None else ran.get((t["optimizer"], *key))
        if value is not None:
            steps.setdefault(t["optimizer"], {})[key] = float(value)
        reached.setdefault(t["optimizer"], []).append(t["steps"] is not None)
    sgd = steps.get(SGD, {})
    pooled = {k: float(np.mean([steps[o][k] for o in others if k in steps.get(o, {})])) for k in sgd
              if any(k in steps.get(o, {}) for o in others)}
    tests = _holm([{"a": "others (mean)", "b": SGD, **paired_test(pooled, sgd)}]) if sgd else []
    return {"metric": "steps to target", "tests": tests, "reached": {o: f"{sum(v)} of {len(v)}" for o, v in reached.items()},
            "means": {o: mean_ci(v.values()) for o, v in steps.items()},
            "verdict": decide(tests, _seeds(data, dataset)) if tests else not_tested("no time to target (validation curves)")}


def _unstable(data: StudyData, dataset: str, others: list[str], id_name: str) -> dict:
    from scipy.stats import fisher_exact

    rows = [r for r in data.rows if r["dataset"] == dataset]
    count = {o: (sum(r["status"] == "diverged" for r in rows if r["optimizer"] == o),
                 sum(r["optimizer"] == o for r in rows)) for o in (SGD, *others)}
    sd, sn = count[SGD]
    od, on = sum(count[o][0] for o in others), sum(count[o][1] for o in others)
    p = float(fisher_exact([[sd, sn - sd], [od, on - od]]).pvalue) if sn and on else None
    test = {"a": "others", "b": SGD, "mean_diff": (od / on - sd / sn) if sn and on else None, "p_value": p, "n": sn}
    spread = {o: float(np.std(v, ddof=1)) if len(v := [x for x in data.by_seed(f"final.{id_name}.forces_mae", dataset, o).values()
                                                       if _finite(x)]) > 1 else None for o in (SGD, *others)}
    return {"metric": "diverged trials", "diverged": {o: f"{d} of {n}" for o, (d, n) in count.items()},
            "seed_spread_meV_A": spread, "tests": _holm([test]), "verdict": decide([test], _seeds(data, dataset))}


def claim2(data: StudyData, dataset: str) -> dict:
    opts = _present(data, dataset)
    others = [o for o in opts if o != SGD]
    if SGD not in opts or not others:
        return {"verdict": not_tested("needs sgd and at least one other optimizer"), "parts": {}}
    parts = {"slow": _slow(data, dataset, others), "unstable": _unstable(data, dataset, others, id_set(data, dataset))}
    return {"verdict": combine(parts), "parts": parts}


def error_quantities(row: dict) -> list[str]:
    """Property error keys (after 'property.') that a row holds before and after refinement, resolved."""
    out = []
    for key, value in row.items():
        rest = key.removeprefix("property.")
        if rest == key or rest.rsplit(".", 1)[-1] not in ERROR_LEAVES:
            continue
        before, stem = row.get(f"property_final.{rest}"), rest.rsplit(".", 1)[0]
        resolved = (row.get(f"property.{stem}.resolved"), row.get(f"property_final.{stem}.resolved"))
        if _finite(value, positive=True) and _finite(before, positive=True) and False not in resolved:
            out.append(rest)
    return sorted(out)


def claim3(data: StudyData, dataset: str) -> dict:
    refined, final, quantities = {}, {}, set()
    for r in data.selected(dataset):
        qs = error_quantities(r) if r["status"] == "completed" else []
        if qs:
            key = (r["optimizer"], r["backbone"], r["seed"])
            refined[key] = float(np.mean([math.log10(r[f"property.{q}"]) for q in qs]))
            final[key] = float(np.mean([math.log10(r[f"property_final.{q}"]) for q in qs]))
            quantities.update(qs)
    if not refined:
        if not any(key.startswith("property.") for r in data.selected(dataset) for key in r):
            return {"verdict": not_tested("no property computed in this regime (its dataset's properties are "
                                          "empty, or none applies to its structures)"), "parts": {}}
        return {"verdict": not_tested("no property errors both before and after refinement "
                                      "(the study needs refine: true and properties: [final, refined])"), "parts": {}}
    test = _holm([{"a": "refined", "b": "final", **paired_test(refined, final)}])[0]
    ratio = None if test["mean_diff"] is None else 10 ** test["mean_diff"]
    interval = None if test["ci"] is None else [10 ** (test["mean_diff"] - test["ci"]), 10 ** (test["mean_diff"] + test["ci"])]
    part = {"metric": "mean log10 |property error|", "tests": [test], "quantities": sorted(quantities), "trials": len(refined),
            "ratio": ratio, "ratio_interval": interval, "verdict": decide([test], _seeds(data, dataset))}
    return {"verdict": part["verdict"], "parts": {"properties": part}}


def decide_claims(data: StudyData) -> dict[str, dict[int, dict]]:
    """dataset -> claim number -> {"verdict", "parts"}: each part with its tests and numbers."""
    return {ds: {1: claim1(data, ds), 2: claim2(data, ds), 3: claim3(data, ds)} for ds in data.datasets}
