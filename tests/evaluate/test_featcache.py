"""The on-disk graph cache (optbench.featcache) on real CHGNet graphs of revMD17 ethanol frames."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os

import numpy as np
import pytest
from ase.io import read, write

from optbench import featcache
from optbench.data.io import read_frames
from optbench.evaluate import predict_set
from optbench.loss import FeaturizedSet


@pytest.fixture(scope="module")
def chgnet():
    from optbench.backbones import load_backbone

    return load_backbone("chgnet")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder for this test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("OPTBENCH_CACHE", str(root))
    return root


@pytest.fixture
def counted(chgnet, monkeypatch):
    """The real CHGNet featurize, with a count of its calls."""
    calls = []
    real = type(chgnet).featurize

    def featurize(self, atoms):
        calls.append(len(atoms))
        return real(self, atoms)

    monkeypatch.setattr(type(chgnet), "featurize", featurize)
    return calls


def _entries(root):
    return sorted((root / "graphs").rglob("*.pt"))


@contextlib.contextmanager
def featcache_off():
    """OPTBENCH_CACHE=off for a block (the cache folder of the test comes back after it)."""
    old = os.environ["OPTBENCH_CACHE"]
    os.environ["OPTBENCH_CACHE"] = "off"
    try:
        yield
    finally:
        os.environ["OPTBENCH_CACHE"] = old


def test_second_use_reads_the_cache_and_predicts_the_same(chgnet, cache, counted, ethanol_small):
    frames = read_frames(ethanol_small["id"])
    first = FeaturizedSet(frames, chgnet, "id")
    assert len(counted) == len(frames)
    again = FeaturizedSet(read_frames(ethanol_small["id"]), chgnet, "id")
    assert len(counted) == len(frames)  # nothing featurized the second time
    assert len(_entries(cache)) == 1
    with featcache_off():
        fresh = FeaturizedSet(frames, chgnet, "id")
    assert len(counted) == 2 * len(frames)
    for cached_set in (first, again):
        pred, ref = predict_set(chgnet, cached_set), predict_set(chgnet, fresh)
        assert pred["energy"] == ref["energy"]
        assert all(np.array_equal(a, b) for a, b in zip(pred["forces"], ref["forces"], strict=True))


def test_changed_content_misses_and_a_moved_file_hits(chgnet, cache, counted, ethanol_small, tmp_path):
    atoms = read(ethanol_small["id"], index=":")
    moved = tmp_path / "elsewhere" / "same.xyz"
    moved.parent.mkdir()
    write(moved, atoms, format="extxyz")
    FeaturizedSet(read_frames(ethanol_small["id"]), chgnet)
    FeaturizedSet(read_frames(moved), chgnet)  # same content, another path: a hit
    assert len(counted) == len(atoms)
    atoms[3].positions[0, 0] += 0.01  # one coordinate of one frame, 0.01 Å
    write(moved, atoms, format="extxyz")
    FeaturizedSet(read_frames(moved), chgnet)
    assert len(counted) == 2 * len(atoms)
    assert len(_entries(cache)) == 2


def test_damaged_entry_is_a_miss_and_is_rewritten(chgnet, cache, counted, ethanol_small):
    frames = read_frames(ethanol_small["id"])
    FeaturizedSet(frames, chgnet)
    (entry,) = _entries(cache)
    entry.write_bytes(entry.read_bytes()[:100])
    fset = FeaturizedSet(frames, chgnet)
    assert len(counted) == 2 * len(frames) and len(fset.graphs) == len(frames)
    assert featcache._load(entry, len(frames), "cpu") is not None


def _write_entry(frames, barrier) -> None:
    from optbench.backbones import load_backbone

    backbone = load_backbone("chgnet")
    barrier.wait()
    featcache.featurize_frames(frames, backbone)


def test_two_concurrent_writers_leave_one_valid_entry(chgnet, cache, ethanol_small):
    frames = read_frames(ethanol_small["train"])
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_write_entry, args=(frames, barrier)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    (entry,) = _entries(cache)
    assert not [p for p in entry.parent.iterdir() if p.suffix == ".tmp"]
    graphs = featcache._load(entry, len(frames), "cpu")
    fresh = [chgnet.featurize(f.atoms) for f in frames]
    assert graphs is not None
    for g, f in zip(graphs, fresh, strict=True):
        assert np.array_equal(g.atom_graph.numpy(), f.atom_graph.numpy())
        assert np.array_equal(g.atom_frac_coord.detach().numpy(), f.atom_frac_coord.detach().numpy())


def test_runs_featurize_once_and_report_phases(run_config, cache, counted, tmp_path):
    """A second run (another seed, so another validation split) featurizes nothing; results.json has phases_s."""
    from optbench.train import finetune

    first = finetune({**run_config, "refine": "lbfgs", "refine_steps": 1})
    n = len(counted)
    assert n > 0
    finetune({**run_config, "seed": 1, "out": tmp_path / "run2"})
    assert len(counted) == n
    phases = json.loads((run_config["out"] / "results.json").read_text())["phases_s"]
    assert phases == first["phases_s"]
    beside = {"evaluate_beside_train", "evaluate_beside_refine"} & set(phases)  # evaluations in their own thread
    assert set(phases) - beside == {"read", "featurize", "setup", "evaluate", "train", "refine", "total"}
    assert all(v > 0 for v in phases.values())
    assert sum(v for k, v in phases.items() if k != "total" and k not in beside) <= phases["total"]


def test_a_study_points_the_cache_into_its_folder_unless_the_user_chose_one(tmp_path, monkeypatch):
    monkeypatch.delenv("OPTBENCH_CACHE")
    with featcache.cache_in(tmp_path / "study" / "cache"):
        assert featcache.cache_root() == tmp_path / "study" / "cache"
    assert "OPTBENCH_CACHE" not in os.environ
    monkeypatch.setenv("OPTBENCH_CACHE", str(tmp_path / "mine"))
    with featcache.cache_in(tmp_path / "study" / "cache"):
        assert featcache.cache_root() == tmp_path / "mine"
    monkeypatch.setenv("OPTBENCH_CACHE", "off")
    assert featcache.cache_root() is None


def test_a_second_run_reuses_the_zero_shot_predictions_with_the_same_numbers(run_config, cache, tmp_path, monkeypatch):
    """E0 pass and zero-shot evaluation (pretrained weights, same files) are computed once; the numbers
    of the run that reuses them equal those of a run without any cache."""
    import optbench.evaluate as ev
    from optbench.train import finetune

    calls = []
    real, real_e = ev._predict_set, ev._predict_energies  # the evaluations, and the E0 pass (energies alone)
    monkeypatch.setattr(ev, "_predict_set", lambda bb, fset, bs: calls.append(fset.name) or real(bb, fset, bs))
    monkeypatch.setattr(ev, "_predict_energies", lambda bb, fset, bs: calls.append("e0") or real_e(bb, fset, bs))
    finetune(run_config)
    first = list(calls)
    cached = finetune({**run_config, "out": tmp_path / "again"})
    reused = calls[len(first):]
    zero_shot = 1 + len(cached["metrics"]["zero_shot"])  # the E0 pass and one evaluation per set
    assert len(first) - len(reused) == zero_shot
    with featcache_off():
        fresh = finetune({**run_config, "out": tmp_path / "fresh"})
    assert cached["metrics"] == fresh["metrics"] and cached["e0"] == fresh["e0"]
