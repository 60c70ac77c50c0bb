"""A tiny real study: two datasets of revMD17 (ethanol, methanol), two optimizers x two LRs."""

from __future__ import annotations

import pytest
import yaml
from ase.io import read, write


@pytest.fixture(scope="session")
def study_files(ethanol_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study_data")
    write(folder / "train.xyz", read(ethanol_dir / "train.xyz", index=":16"), format="extxyz")
    write(folder / "id.xyz", read(ethanol_dir / "test_MD.xyz", index=":4"), format="extxyz")
    write(folder / "ood.xyz", read(ethanol_dir / "test_H_removal.xyz", index="::3"), format="extxyz")
    meth = [a for a in read(ethanol_dir / "train_eth_meth.xyz", index=":") if len(a) == 6]
    write(folder / "meth.xyz", meth[:12], format="extxyz")
    write(folder / "meth_test.xyz", meth[12:16], format="extxyz")
    return folder


def write_study(folder, path, **overrides):
    study = {
        "name": "tiny",
        "datasets": [
            {"name": "ethanol", "train": str(folder / "train.xyz"),
             "tests": {"id": str(folder / "id.xyz"), "ood_hremoval": str(folder / "ood.xyz")}, "regime": "molecular"},
            {"name": "methanol", "train": str(folder / "meth.xyz"), "tests": {"id": str(folder / "meth_test.xyz")},
             "regime": "molecular"},
        ],
        "optimizers": {"adamw": {"lrs": [1e-3, 1e-4]}, "sgd": {"lrs": [1e-3, 1e-4]}},
        "seeds": [0],
        "max_steps": 4,
        "eval_every": 2,
        "refine_steps": 2,
        "curvature": None,
        **overrides,
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def sequential(study_files, tmp_path_factory):
    """The tiny study run once with the sequential executor: (StudyConfig, study folder)."""
    from optbench.study import load_study, run_study

    folder = tmp_path_factory.mktemp("seq")
    study = load_study(write_study(study_files, folder / "study.yaml"))
    run_study(study, folder / "out")
    return study, folder / "out"
