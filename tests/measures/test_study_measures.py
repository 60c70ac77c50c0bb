"""A one-dataset study (no shared data) with `lr_grid: auto`: LR range tests place the grids,
forgetting is measured, and the report says what it tests."""

from __future__ import annotations

import csv

import pytest
import yaml

from optbench.io import read_json
from optbench.report.aggregate import StudyData, holm
from optbench.report.build import recommendations
from optbench.study import load_study, run_study
from optbench.study.lr_range import landmarks, lr_grid

from .data import rattled_ethanol


@pytest.fixture(scope="module")
def one_dataset_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    train = rattled_ethanol(folder / "train.xyz", 12, seed=1)
    test = rattled_ethanol(folder / "test.xyz", 4, seed=2)
    study = {"name": "one", "datasets": [{"name": "ethanol", "train": str(train), "tests": {"id": str(test)}}],
             "optimizers": {"adamw": {}, "sgd": {}}, "lr_grid": "auto", "lr_grid_size": 2, "lr_range_steps": 12,
             "seeds": [0, 1],
             "max_steps": 3, "eval_every": 1, "refine": True, "refine_steps": 1, "properties": False, "curvature": None}
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    run_study(load_study(folder / "study.yaml"), folder / "out")
    return folder / "out"


def _rows(out):
    with open(out / "results.csv") as fh:
        return list(csv.DictReader(fh))


def test_one_dataset_study_measures_forgetting(one_dataset_study):
    selected = [r for r in _rows(one_dataset_study) if r["selected"] == "True"]
    assert selected
    for r in selected:
        assert float(r["forgetting_energy_rms_meV_atom"]) >= 0
        assert float(r["forgetting_forces_rms_meV_A"]) > 0
        assert int(r["forgetting_n_structures"]) >= 30
    md = (one_dataset_study / "report.md").read_text()
    assert "forgetting" in md and "probe set: energy drift (meV/atom)" in md


def test_holm_adjusts_step_down():
    """Holm on (0.01, 0.04, 0.03): 3·0.01, max(2·0.03, 0.03), max(1·0.04, 0.06); None is left out."""
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_sentences_test_and_count_what_they_say(one_dataset_study):
    data = StudyData(one_dataset_study)
    recs = recommendations(data)
    text = " ".join(recs)
    # ranking: a paired test over the two seeds, Holm-corrected, never "intervals overlap"
    assert "paired t-test over 2 seeds, Holm-adjusted" in text and "intervals overlap" not in text
    # every LR chosen from a two-point grid sits at an edge, and the report says so for each optimizer
    edge = next(r for r in recs if "edge of its grid" in r)
    assert "adamw (lr" in edge and "sgd (lr" in edge
    # refinement: 2 optimizers x 1 test set = 2 pairs (not 4 optimizer-seed-set triples)
    assert "of 2 optimizer/test-set pairs" in text
    # time to target: a seed mean, checked against the per-seed values
    per_seed = [t for t in data.time_to_target("ethanol") if t["optimizer"] == "sgd" and t["steps"] is not None]
    summary = next(t for t in data.time_to_target_summary("ethanol") if t["optimizer"] == "sgd")
    assert summary["n_reached"] == len(per_seed) and summary["n_seeds"] == 2
    if per_seed:
        assert summary["steps"]["mean"] == pytest.approx(sum(t["steps"] for t in per_seed) / len(per_seed))
    md = (one_dataset_study / "report.md").read_text()
    assert "p (Holm)" in md and "LR grid edge" in md and "mean ± 95% CI over the seeds that reach it" in md


def test_auto_grids_come_from_recorded_range_tests(one_dataset_study):
    grids = read_json(one_dataset_study / "lr_range" / "grids.json")
    index = read_json(one_dataset_study / "study.json")
    for opt in ("adamw", "sgd"):
        rec = grids[f"ethanol|chgnet|{opt}"]
        curve = read_json(one_dataset_study / "lr_range" / "ethanol" / "chgnet" / f"{opt}.json")
        assert curve["lr_steepest"] == rec["lr_steepest"] and len(curve["loss"]) == curve["steps"] >= 3
        assert len(rec["grid"]) == 2 and rec["grid"] == index["lr_grids"][f"ethanol|chgnet|{opt}"]
        tried = {t["lr"] for t in index["trials"] if t["optimizer"] == opt}
        assert tried == set(rec["grid"])
        if rec["lr_diverged"]:
            assert max(rec["grid"]) < rec["lr_diverged"]


def test_range_landmarks_on_a_known_curve():
    """Loss 1 - tanh(log10(lr) + 3): steepest fall at lr = 1e-3; it blows up past 1e-1."""
    import numpy as np

    lrs = list(np.logspace(-6, -1, 51))
    loss = [1 - np.tanh(np.log10(x) + 3) for x in lrs]
    marks = landmarks(lrs, loss, diverged=0.1)
    assert marks["lr_steepest"] == pytest.approx(1e-3, rel=0.05)
    grid = lr_grid({"optimizer": "x", **marks}, 4)
    assert grid == [3e-3, 1e-3, 3e-4, 1e-4]
    assert lr_grid({"optimizer": "x", **marks, "lr_diverged": 3e-3}, 3) == [1e-3, 3e-4, 1e-4]  # kept below lr_diverged/3


def test_range_without_descent_hangs_the_grid_below_divergence():
    marks = landmarks([1e-4, 1e-3, 1e-2, 1e-1], [1.0, 0.98, 1.0, 5.0], diverged=0.1)
    assert marks["lr_steepest"] is None and "never fell" in marks["reason"]
    assert lr_grid({"optimizer": "x", **marks}, 2) == [3e-2, 1e-2]
