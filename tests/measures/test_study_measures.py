"""A one-dataset study (no shared data): forgetting is measured, and the report says what it tests."""

from __future__ import annotations

import csv

import pytest
import yaml

from optbench.study import load_study, run_study

from .data import rattled_ethanol


@pytest.fixture(scope="module")
def one_dataset_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    train = rattled_ethanol(folder / "train.xyz", 12, seed=1)
    test = rattled_ethanol(folder / "test.xyz", 4, seed=2)
    study = {"name": "one", "datasets": [{"name": "ethanol", "train": str(train), "tests": {"id": str(test)}}],
             "optimizers": {"adamw": {"lrs": [1e-3, 1e-4]}, "sgd": {"lrs": [1e-2, 1e-3]}}, "seeds": [0, 1],
             "max_steps": 3, "eval_every": 1, "refine": False, "properties": False, "curvature": None}
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
