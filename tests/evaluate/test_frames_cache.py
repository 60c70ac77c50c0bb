"""Parsed extxyz files and packed graph lists in the on-disk cache (optbench.featcache)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ase.io import read, write

from optbench import featcache
from optbench.data.io import LabelKeys, read_frames
from optbench.errors import InputError

from ..curvature.toy import ETHANOL


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("OPTBENCH_CACHE", str(root))
    return root


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _assert_same_frames(got, ref):
    assert len(got) == len(ref)
    for f, g in zip(got, ref, strict=True):
        for x, y in ((f.atoms.numbers, g.atoms.numbers), (f.atoms.positions, g.atoms.positions),
                     (np.asarray(f.atoms.cell), np.asarray(g.atoms.cell)), (f.atoms.pbc, g.atoms.pbc)):
            assert np.array_equal(x, y) and x.dtype == y.dtype
        assert f.energy == g.energy and _same(f.info, g.info)
        assert (f.forces is None) == (g.forces is None) and (f.forces is None or np.array_equal(f.forces, g.forces))


def test_second_read_comes_from_the_cache_with_the_same_frames(cache, monkeypatch):
    ref = read_frames(ETHANOL)
    assert len(list((cache / "frames").rglob("*.pkl"))) == 1
    import optbench.data.io as dio

    monkeypatch.setattr(dio, "_read_images", lambda *a: pytest.fail("parsed again"))
    _assert_same_frames(read_frames(ETHANOL), ref)
    monkeypatch.setenv("OPTBENCH_CACHE", "off")
    with pytest.raises(pytest.fail.Exception):
        read_frames(ETHANOL)


def test_changed_content_keys_or_index_miss(cache, tmp_path):
    path = tmp_path / "f.xyz"
    frames = read(ETHANOL, index=":3")
    write(path, frames, format="extxyz")
    first = read_frames(path)
    frames[1].positions[0, 0] += 0.01
    write(path, frames, format="extxyz")
    assert read_frames(path)[1].atoms.positions[0, 0] == pytest.approx(first[1].atoms.positions[0, 0] + 0.01)
    assert len(read_frames(path, index=":2")) == 2
    assert read_frames(path, LabelKeys(energy="nope"), require_energy=False)[0].energy is None
    assert len(list((cache / "frames").rglob("*.pkl"))) == 4


def test_a_failed_read_is_not_stored(cache, tmp_path):
    path = tmp_path / "f.xyz"
    write(path, read(ETHANOL, index=":2"), format="extxyz")
    for _ in range(2):
        with pytest.raises(InputError, match="no energy label"):
            read_frames(path, LabelKeys(energy="missing"))
    assert not (cache / "frames").exists()


class _Plain:
    def __init__(self, n: int, tag: str):
        self.x = torch.arange(3 * n, dtype=torch.float32).reshape(n, 3) + n
        self.idx = torch.arange(n, dtype=torch.int32)
        self.scalar = torch.tensor(float(n))
        self.tag = tag


def test_packed_graph_lists_round_trip(tmp_path):
    objs = [_Plain(n, f"s{n}") for n in (1, 4, 2)]
    path = tmp_path / "g.pt"
    featcache._store(path, objs)
    assert isinstance(torch.load(path, weights_only=False)["graphs"], dict)  # one tensor per attribute
    back = featcache._load(path, 3, "cpu")
    for a, b in zip(objs, back, strict=True):
        assert type(b) is _Plain and vars(a).keys() == vars(b).keys() and a.tag == b.tag
        for key in ("x", "idx", "scalar"):
            assert torch.equal(getattr(a, key), getattr(b, key)) and getattr(a, key).dtype == getattr(b, key).dtype
    mixed = [_Plain(1, "a"), {"not": "plain"}]
    featcache._store(path, mixed)
    assert featcache._load(path, 2, "cpu")[1] == {"not": "plain"}


def test_a_warm_evaluate_imports_neither_ase_io_nor_scipy(cache, tmp_path):
    """With frames and graphs cached, `optbench evaluate` of molecules needs no extxyz parser,
    no scipy and none of CHGNet's MD or VASP modules."""
    code = ("import sys; from optbench.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('ase.io', 'scipy', 'chgnet.model.dynamics', 'pymatgen.io.vasp') if m in sys.modules))")
    args = ["evaluate", "--model", "chgnet", "--test", f"md={ETHANOL}", "--out", str(tmp_path / "m.json")]
    env = {"OPTBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)}
    for _ in range(2):  # the first run fills the cache
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
