"""Shared fixtures: small real-DFT subsets of revMD17 ethanol (shipped in tests/fixtures), real CHGNet."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from optbench.data import shared_data_dir as shared_data

# Tiny graphs: one intra-op thread is as fast and keeps parallel test processes from thrashing.
torch.set_num_threads(1)


ETHANOL_MINI = Path(__file__).parent / "fixtures" / "ethanol_revmd17_mini"


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory):
    """The tests' featurized graphs go to a session folder, never to ~/.cache (optbench.featcache)."""
    old = os.environ.get("OPTBENCH_CACHE")
    os.environ["OPTBENCH_CACHE"] = str(tmp_path_factory.mktemp("optbench-cache"))
    yield Path(os.environ["OPTBENCH_CACHE"])
    if old is None:
        os.environ.pop("OPTBENCH_CACHE", None)
    else:
        os.environ["OPTBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def ethanol_dir() -> Path:
    """A few revMD17 ethanol frames shipped with the tests (same file names as the full set)."""
    return ETHANOL_MINI


@pytest.fixture(scope="session")
def ethanol_full_dir() -> Path:
    """The whole revMD17 ethanol set from ../shared/data: only for the registry's pinned-hash checks."""
    path = shared_data() / "ethanol_revmd17"
    if not (path / "train.xyz").is_file():
        pytest.skip(f"extra check: the full revMD17 ethanol set is not beside this checkout ({path})")
    return path


@pytest.fixture(scope="session")
def ethanol_small(ethanol_dir, tmp_path_factory) -> dict[str, Path]:
    """train (24 frames), id (8 MD frames), ood (6 H-removal frames, energies only)."""
    from ase.io import read, write

    out = tmp_path_factory.mktemp("ethanol")
    files = {"train": ("train.xyz", slice(None)), "id": ("test_MD.xyz", slice(None)),
             "ood": ("test_H_removal.xyz", slice(None, None, 2))}
    paths = {}
    for name, (fname, sl) in files.items():
        frames = read(ethanol_dir / fname, index=sl)
        paths[name] = out / f"{name}.xyz"
        write(paths[name], frames, format="extxyz")
    return paths


@pytest.fixture
def run_config(ethanol_small, tmp_path):
    """Keyword arguments of a tiny but real CHGNet fine-tuning run."""
    return dict(
        model="chgnet", train=ethanol_small["train"],
        tests={"id": ethanol_small["id"], "ood": ethanol_small["ood"]},
        optimizer="adamw", lr=1e-3, batch_size=4, max_steps=6, seed=0,
        eval_every=3, checkpoint_every=2, out=tmp_path / "run",
    )


@pytest.fixture
def cli_console():
    """The CLI adds a console handler to the 'optbench' logger; take it off after the test."""
    from optbench.provenance import log

    before = list(log.handlers)
    yield
    for handler in [h for h in log.handlers if h not in before]:
        log.removeHandler(handler)
