"""The paper's three claims decided on synthetic study numbers whose answer is known."""

from __future__ import annotations

import pytest

from optbench.report.aggregate import StudyData
from optbench.report.claims import (
    CONFIRMED,
    REFUTED,
    claim1,
    claim2,
    claim3,
    combine,
    decide,
    not_separable,
)
from optbench.report.claims_text import claims_markdown

SEEDS = (0, 1, 2)
OPTS = ("adamw", "schedulefree", "adam", "sgd")
JITTER = (0.0, 0.4, -0.3)  # per seed, shared by every optimizer: a paired test removes it


class Synthetic(StudyData):
    """StudyData over rows given in memory (and validation curves), no study folder."""

    def __init__(self, rows: list[dict], curves: dict[str, list[dict]] | None = None):
        self.index = {"name": "synthetic", "datasets": {"ds": {"tags": {"test_id": "ID", "ood": "OOD"}}}}
        self.reference, self.rows, self.curves = "adamw", rows, curves or {}

    def curve(self, key: str) -> list[dict]:
        return self.curves.get(key, [])


def _rows(mae: dict, kappa: dict | None = None, noise: float = 0.05, **extra) -> list[dict]:
    rows = []
    for opt in OPTS:
        for s in SEEDS:
            r = {"trial": f"{opt}-{s}", "dataset": "ds", "backbone": "chgnet", "optimizer": opt, "lr": 1e-3, "seed": s,
                 "selected": True, "status": "completed", "steps": 100,
                 "final.test_id.forces_mae": mae[opt] + JITTER[s] + noise * (s - 1) * (OPTS.index(opt) + 1)}
            if kappa is not None:
                r["curvature.final.preconditioned.lambda_max"] = 1.0
                r["curvature.final.preconditioned.condition_number"] = kappa[opt] * (1 + 0.3 * s) * (1 + 0.01 * s * OPTS.index(opt))
            r.update({k: v(opt, s) for k, v in extra.items()})
            rows.append(r)
    return rows


def test_claim1_confirmed_refuted_or_not_separable():
    good = {"adamw": 20.0, "schedulefree": 21.0, "adam": 40.0, "sgd": 60.0}
    kappa = {"adamw": 10.0, "schedulefree": 12.0, "adam": 1e3, "sgd": 1e5}
    c = claim1(Synthetic(_rows(good, kappa)), "ds")
    assert c["verdict"] == CONFIRMED, c
    acc = c["parts"]["accuracy"]
    assert len(acc["tests"]) == 4 and all(t["mean_diff"] < 0 and t["p_holm"] < 0.05 for t in acc["tests"])
    assert acc["means"]["adamw"]["mean"] == pytest.approx(20.0 + sum(JITTER) / 3, abs=0.1)
    bad = {**good, "adam": 10.0}  # adam beats both candidates in every seed
    assert claim1(Synthetic(_rows(bad, kappa)), "ds")["verdict"] == REFUTED
    noisy = claim1(Synthetic(_rows({**good, "adam": 21.0}, kappa, noise=3.0)), "ds")
    assert noisy["parts"]["accuracy"]["verdict"] == not_separable(3) and noisy["verdict"] == not_separable(3)


def test_claim1_conditioning_of_one_seed_is_not_separable():
    rows = _rows({"adamw": 20.0, "schedulefree": 21.0, "adam": 40.0, "sgd": 60.0},
                 {"adamw": 10.0, "schedulefree": 12.0, "adam": 1e3, "sgd": 1e5})
    for r in rows:  # curvature of the first seed only, as the studies run it by default
        if r["seed"] != 0:
            r.pop("curvature.final.preconditioned.lambda_max")
            r.pop("curvature.final.preconditioned.condition_number")
    c = claim1(Synthetic(rows), "ds")
    assert c["parts"]["accuracy"]["verdict"] == CONFIRMED
    assert c["parts"]["conditioning"]["verdict"] == not_separable(1) and c["verdict"] == not_separable(1)


def _curve(hit_step: int) -> list[dict]:
    """A validation curve that first reaches 30 meV/Å (adamw's best) at `hit_step`."""
    return [{"step": s, "valid_forces_mae": 30.0 if s >= hit_step else 50.0, "elapsed_s": s / 10} for s in range(10, 101, 10)]


def test_claim2_slow_and_unstable_is_confirmed():
    hit = {"adamw": 30, "schedulefree": 20, "adam": 30, "sgd": 90}
    rows = _rows({"adamw": 20.0, "schedulefree": 21.0, "adam": 22.0, "sgd": 40.0})
    curves = {r["trial"]: _curve(hit[r["optimizer"]] + (10 if r["optimizer"] == "sgd" and r["seed"] == 1 else 0))
              for r in rows}
    for opt in OPTS:  # the other LRs of each grid: every SGD one diverged, no other one did
        rows += [{"trial": f"{opt}-x{i}", "dataset": "ds", "backbone": "chgnet", "optimizer": opt, "lr": 1e-2, "seed": i % 3,
                  "selected": False, "status": "diverged" if opt == "sgd" else "completed"} for i in range(6)]
    c = claim2(Synthetic(rows, curves), "ds")
    assert c["parts"]["slow"]["verdict"] == CONFIRMED and c["parts"]["unstable"]["verdict"] == CONFIRMED
    assert c["verdict"] == CONFIRMED
    assert c["parts"]["unstable"]["diverged"]["sgd"] == "6 of 9"
    fast = claim2(Synthetic(rows, {**curves, **{f"sgd-{s}": _curve(10 + 0 * s) for s in SEEDS}}), "ds")
    assert fast["parts"]["slow"]["verdict"] in (REFUTED, not_separable(3)) and fast["verdict"] != CONFIRMED


@pytest.mark.parametrize("factor,verdict", [(0.5, CONFIRMED), (2.0, REFUTED), (None, not_separable(3))])
def test_claim3_refinement_and_property_errors(factor, verdict):
    def before(opt, s):
        return 10.0 * (1 + 0.1 * OPTS.index(opt) + 0.05 * s)

    def after(opt, s):
        if factor is None:  # half the trials better, half worse
            return before(opt, s) * (0.5 if (OPTS.index(opt) + s) % 2 else 2.0)
        return before(opt, s) * factor * (1 + 0.01 * s)

    rows = _rows({o: 20.0 for o in OPTS}, **{"property_final.Si.eos.B0_GPa.abs": before, "property.Si.eos.B0_GPa.abs": after,
                                             "property.Si.eos.B0_GPa.rel": lambda o, s: 0.1})
    c = claim3(Synthetic(rows), "ds")
    assert c["verdict"] == verdict
    part = c["parts"]["properties"]
    assert part["quantities"] == ["Si.eos.B0_GPa.abs"] and part["trials"] == 12
    if factor is not None:
        assert part["ratio"] == pytest.approx(factor, rel=0.02)


def test_claims_without_the_data_are_not_tested():
    data = Synthetic(_rows({o: 20.0 for o in OPTS}))
    assert claim3(data, "ds")["verdict"].startswith("not tested: no property computed in this regime")
    only_refined = Synthetic(_rows({o: 20.0 for o in OPTS}, **{"property.Si.eos.B0_GPa.abs": lambda o, s: 1.0}))
    assert "properties: [final, refined]" in claim3(only_refined, "ds")["verdict"]  # the study, not the regime, lacks it
    assert claim1(data, "ds")["parts"]["conditioning"]["verdict"].startswith("not tested")
    md = claims_markdown(data)
    assert "## Claim 1" in md and "## Claim 3" in md and "What else the study found" in md


def test_decide_and_combine():
    sig_good = {"mean_diff": -1.0, "p_holm": 0.01}
    assert decide([sig_good, sig_good], 3) == CONFIRMED
    assert decide([sig_good, {"mean_diff": -1.0, "p_holm": 0.2}], 3) == not_separable(3)
    assert decide([sig_good, {"mean_diff": 2.0, "p_holm": 0.01}], 3) == REFUTED
    assert decide([{"mean_diff": None, "p_holm": None}], 1) == "not separable at 1 seed"
    parts = {"a": {"verdict": CONFIRMED}, "b": {"verdict": not_separable(3)}}
    assert combine(parts) == not_separable(3)
    assert combine({**parts, "c": {"verdict": REFUTED}}) == REFUTED
    assert combine({"a": {"verdict": CONFIRMED}}) == CONFIRMED


def test_the_final_spectrum_is_read_from_the_refined_analysis(tmp_path):
    """A study that analyses start and refined only still has curvature.final.* columns: the refined
    analysis holds the final one (before_refinement)."""
    from optbench.io import write_json

    write_json(tmp_path / "study.json", {"trials": [{"trial": "t", "dataset": "ds", "backbone": "chgnet", "optimizer": "adamw",
                                                     "lr": 1e-3, "seed": 0, "selected": True}], "datasets": {}})
    write_json(tmp_path / "trials" / "t" / "results.json", {"status": "completed", "steps": 3, "wall_time_s": 1.0, "metrics": {}})
    spectrum = {"preconditioned": {"condition_number_top_k": 1.5, "lambda_max": 2.0}}
    write_json(tmp_path / "analyses" / "curvature" / "t" / "refined" / "curvature.json",
               {"checkpoint": "refined", "preconditioned": {"condition_number_top_k": 1.2}, "before_refinement": spectrum})
    row = StudyData(tmp_path).rows[0]
    assert row["curvature.refined.preconditioned.condition_number_top_k"] == 1.2
    assert row["curvature.final.preconditioned.condition_number_top_k"] == 1.5
