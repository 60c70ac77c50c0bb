"""Adding a regime is one registry entry: the study config, the CLI and `suite_path` know it, and a
study runs on it with a toy optimizer (also one registry entry) through fine-tuning and curvature."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from optbench.cli import build_parser
from optbench.data import suite_path
from optbench.data.manifest import sha256_file
from optbench.errors import InputError
from optbench.optim import OptimizerSpec, register_optimizer, unregister_optimizer
from optbench.optim.builtin import REGISTRY
from optbench.regimes import Regime, register_regime, unregister_regime
from optbench.study import run_study
from optbench.study.config import DatasetSpec

from .conftest import write_study


@pytest.fixture
def toy_regime(study_files, tmp_path):
    """A regime 'toy' whose shipped folder is a tiny ethanol dataset; removed after the test."""
    folder = tmp_path / "toy_suite"
    folder.mkdir()
    splits = {}
    for split, (src, tag) in {"train": ("train.xyz", "train"), "test_id": ("id.xyz", "ID"),
                              "ood_hremoval": ("ood.xyz", "OOD")}.items():
        shutil.copyfile(study_files / src, folder / src)
        count = (folder / src).read_text().count("Properties=")
        splits[split] = {"file": src, "tag": tag, "count": count, "sha256": sha256_file(folder / src)}
    manifest = {"name": "optbench-toy-small", "regime": "toy", "reference": {"method": "DFT"},
                "keys": {"energy": "energy", "forces": "forces"}, "train_split": "train", "splits": splits}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    register_regime(Regime("toy", "GFN2-xTB", "a tiny ethanol set", "optbench.data.suite:MOLECULAR", folder=folder))
    yield folder
    unregister_regime("toy")


@pytest.fixture
def toy_optimizer():
    """ScheduleFree's entry under another name: its quirks (eval switch) and preconditioner model come along."""
    register_optimizer(OptimizerSpec("toy_sf", cls="schedulefree:AdamWScheduleFree", defaults={"warmup_steps": 0},
                                     eval_switch=True, supports_schedule=False,
                                     preconditioner=REGISTRY["schedulefree"].preconditioner))
    yield "toy_sf"
    unregister_optimizer("toy_sf")


def test_a_registered_regime_is_known_everywhere(toy_regime):
    assert suite_path("toy") == toy_regime
    assert DatasetSpec(name="t", suite="toy").suite == "toy"
    args = build_parser().parse_args(["data", "generate", "toy", "--out", "x"])
    assert args.regime == "toy"
    unregister_regime("toy")
    with pytest.raises(ValueError, match="unknown regime 'toy'"):
        DatasetSpec(name="t", suite="toy")
    with pytest.raises(InputError, match="unknown regime 'toy'"):
        suite_path("toy")


def test_study_on_a_toy_regime_with_a_toy_optimizer(toy_regime, toy_optimizer, study_files, tmp_path):
    from optbench.study import load_study

    path = write_study(study_files, tmp_path / "study.yaml", datasets=[{"name": "toy", "suite": "toy"}],
                       optimizers={toy_optimizer: {"lrs": [1e-3]}}, max_steps=2, eval_every=1, refine=False,
                       properties=False, forgetting=False,
                       curvature={"checkpoints": ["final"], "n_structures": 2, "k": 1, "n_iter": 3, "n_probes": 1,
                                  "n_slq": 1})
    run_study(load_study(path), tmp_path / "out")
    with open(tmp_path / "out" / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["optimizer"], r["regime"], r["status"]) for r in rows] == [(toy_optimizer, "toy", "completed")]
    [curv] = (tmp_path / "out").rglob("curvature.json")
    assert json.loads(curv.read_text())["preconditioner"]["optimizer"] == toy_optimizer
