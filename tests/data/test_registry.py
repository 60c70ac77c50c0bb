"""Public-dataset registry: listing, offline failure, import with --from verified by sha256."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from ase import Atoms
from ase.io import write
from ase.units import Bohr, Hartree

from optbench.cli import main
from optbench.data import dataset_files, load_manifest, read_frames
from optbench.data.registry import PUBLIC, fetch, format_listing
from optbench.errors import InputError


def test_listing_shows_every_entry_with_its_source_licence_keys_and_hashes():
    """What `data list` prints follows the registry: a new entry or a re-pinned file shows up without
    editing this test."""
    import argparse

    from optbench.cli import build_parser

    text = format_listing()
    lines = text.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.startswith("  ") and not ln.startswith("   ") and "  [" in ln]
    blocks = {lines[i].split()[0]: lines[i:j] for i, j in zip(heads, [*heads[1:], len(lines)])}
    assert list(blocks) == list(PUBLIC)
    for d in PUBLIC.values():
        block = "\n".join(blocks[d.name])
        assert block.startswith(f"  {d.name}  [{d.regime}]")
        for value in (d.source, d.licence, d.citation, *(f"{k}={v}" for k, v in d.keys.items())):
            assert value in block, (d.name, value)
        for split, s in d.splits.items():
            [line] = [ln for ln in blocks[d.name] if ln.split()[:3] == [split, s.tag, s.file]]
            assert line.endswith(s.sha256 if s.sha256 else "not pinned (recorded on first fetch)"), line
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    generate = next(a for a in sub.choices["data"]._actions if isinstance(a, argparse._SubParsersAction)).choices["generate"]
    regimes = next(a for a in generate._actions if a.dest == "regime").choices
    for regime in regimes:  # every regime `data generate` makes is listed
        assert any(ln.split()[:1] == [regime] for ln in lines), regime


def test_cli_list(capsys):
    assert main(["data", "list"]) == 0
    assert "ethanol_revmd17" in capsys.readouterr().out


def test_offline_fetch_fails_at_once_and_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTBENCH_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="--from PATH") as err:
        fetch("3bpa", out=tmp_path / "bpa")
    assert time.perf_counter() - t0 < 1.0
    assert "offline" in str(err.value)
    assert not (tmp_path / "bpa").exists()


def test_import_ethanol_from_local_copy(ethanol_full_dir, tmp_path, capsys):
    out = tmp_path / "eth"
    assert main(["data", "fetch", "ethanol_revmd17", "--from", str(ethanol_full_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    man = load_manifest(out, verify=True)
    assert man["splits"]["train"]["count"] == 1000 and man["splits"]["test_md"]["count"] == 1000
    assert man["splits"]["ood_h_removal"]["tag"] == "OOD" and man["sha256_pinned"] is True
    assert [n for n, s in man["splits"].items() if s["tag"] == "train"] == ["train"]
    assert man["alternative_train_splits"]["train_eth_meth"]["count"] == 1300
    files = dataset_files(out)
    assert files.train.name == "train.xyz"
    assert set(files.tests) == {n for n, s in man["splits"].items() if s["tag"] in ("ID", "OOD")}
    frames = read_frames(files.tests["ood_norm_mode_874"], files.keys)
    assert len(frames) == 37 and frames[0].energy < -4000
    from optbench.config import FinetuneConfig
    from optbench.data import finetune_inputs

    cfg = FinetuneConfig(**finetune_inputs(out))  # a valid finetune input with the manifest's keys only
    assert cfg.train == out / "train.xyz" and "ood_dimers" in cfg.tests
    # fetching again into the finished folder is a no-op
    assert fetch("ethanol_revmd17", out=out, from_path=ethanol_full_dir) == out


def test_tampered_copy_is_rejected(ethanol_full_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ethanol_full_dir, copy)
    (copy / "test_norm_mode_874.xyz").chmod(0o644)
    with open(copy / "test_norm_mode_874.xyz", "a") as fh:
        fh.write("\n")
    with pytest.raises(InputError, match="sha256 mismatch") as err:
        fetch("ethanol_revmd17", out=tmp_path / "eth", from_path=copy)
    assert "test_norm_mode_874.xyz" in str(err.value)
    assert not (tmp_path / "eth").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eth")]  # nothing half-written


def test_missing_file_and_unknown_name(ethanol_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(ethanol_dir / "train.xyz", partial)
    with pytest.raises(InputError, match="missing"):
        fetch("ethanol_revmd17", out=tmp_path / "eth", from_path=partial)
    with pytest.raises(InputError, match="unknown dataset"):
        fetch("md22", out=tmp_path / "x", from_path=partial)


def test_water_import_converts_hartree_bohr(tmp_path):
    """The Cheng et al. file is in Hartree and Bohr: imported labels come out in eV and Å."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    frames = []
    for k in range(2):
        a = Atoms("OH2", positions=[[0, 0, 0], [1.8, 0, 0], [-0.5, 1.7, 0]], cell=[10.0] * 3, pbc=True)
        a.info["TotEnergy"] = -17.2 - 0.01 * k
        a.arrays["force"] = rng.normal(scale=0.01, size=(3, 3))
        frames.append(a)
    write(raw / "dataset_1593.xyz", frames, format="extxyz")
    out = fetch("water_revpbe0", out=tmp_path / "water", from_path=raw)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 700
    man = load_manifest(out, verify=True)
    assert man["keys"] == {"energy": "energy", "forces": "forces"} and man["sha256_pinned"] is False
    got = read_frames(dataset_files(out).train)
    assert got[1].energy == pytest.approx((-17.21) * Hartree, rel=1e-12)
    assert np.allclose(got[0].forces, frames[0].arrays["force"] * Hartree / Bohr, atol=1e-7)
    assert got[0].atoms.cell[0, 0] == pytest.approx(10.0 * Bohr)
    assert got[0].atoms.positions[1, 0] == pytest.approx(1.8 * Bohr)


def test_every_public_entry_is_complete():
    for d in PUBLIC.values():
        assert d.source.startswith("https://") and d.licence and d.citation
        assert "train" in d.splits and {s.tag for s in d.splits.values()} <= {"train", "valid", "ID", "OOD"}


def test_bad_imported_file_is_named_by_its_own_path(tmp_path):
    """An error in an imported file names that file, not the temporary copy that is gone."""
    raw = tmp_path / "raw"
    raw.mkdir()
    a = Atoms("OH2", positions=[[0, 0, 0], [1.8, 0, 0], [-0.5, 1.7, 0]], cell=[10.0] * 3, pbc=True)
    a.info["TotEnergy"] = float("nan")
    a.arrays["force"] = np.zeros((3, 3))
    write(raw / "dataset_1593.xyz", [a], format="extxyz")
    with pytest.raises(InputError) as err:
        fetch("water_revpbe0", out=tmp_path / "water", from_path=raw)
    assert str(raw / "dataset_1593.xyz") in str(err.value) and "TotEnergy" in str(err.value)
    assert not list(tmp_path.glob(".water.*")) and not (tmp_path / "water").exists()
