"""`optbench data generate`: seeded, reproducible, resumable, with the real reference (GFN2-xTB)."""

from __future__ import annotations

import shutil

import pytest

from optbench.cli import main
from optbench.data import load_manifest, read_frames
from optbench.data import suite as S
from optbench.data.generate import generate
from optbench.data.refprops import fill_reference_properties
from optbench.errors import InputError

TINY = {"timestep_fs": 0.5, "n_equil": 5, "interval": 3, "frames_300K": 3, "frames_600K": 1, "scan_points": 3}


@pytest.fixture(scope="module")
def tiny():
    """Shrink the molecular 'small' plan to a few frames (same code path, seconds of tblite)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(S.MOLECULAR.params, "small", TINY)
        yield TINY


@pytest.fixture(scope="module")
def base(tiny, tmp_path_factory):
    """One uninterrupted tiny generation, seed 0, shared by the comparisons below."""
    return generate("molecular", size="small", out=tmp_path_factory.mktemp("base") / "mol", seed=0, properties=False)


def _shas(folder):
    return {k: v["sha256"] for k, v in load_manifest(folder, verify=True)["splits"].items()}


def test_generate_writes_a_complete_dataset(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(S.MOLECULAR, "properties", lambda p: {"ethanol": {"vibrations": {}}})
    out = tmp_path / "mol"
    assert main(["data", "generate", "molecular", "--size", "small", "--seed", "3", "--out", str(out)]) == 0
    man = load_manifest(out, verify=True)
    assert man["regime"] == "molecular" and man["seed"] == 3 and man["size"] == "small"
    assert man["reference"]["method"] == "GFN2-xTB" and man["reference"]["wavefunction_restart"] is False
    assert man["keys"] == {"energy": "energy", "forces": "forces", "stress": "stress"}
    tags = {k: v["tag"] for k, v in man["splits"].items()}
    assert tags == {"train": "train", "valid": "valid", "test_id": "ID", "ood_600K": "OOD", "ood_scan": "OOD"}
    n_id = 3 * tiny["frames_300K"]
    assert sum(man["splits"][s]["count"] for s in ("train", "valid", "test_id")) == n_id
    assert man["splits"]["ood_scan"]["count"] == 3 * tiny["scan_points"]
    for name, split in man["splits"].items():
        frames = read_frames(out / split["file"])
        assert len(frames) == split["count"]
        assert all(f.forces is not None and f.stress is None for f in frames), name
    assert set(man["structures"]) == {"ethanol", "malonaldehyde", "butane"}
    # reference properties computed by the properties code with the reference calculator
    vib = man["reference_properties"]["ethanol"]["vibrations"]
    assert vib["settings"] and len(vib["frequencies_cm1"]) == 3 * 9 - 6
    assert not (out / ".partial").exists()


def test_same_seed_same_data_other_seed_other_data(base, tmp_path):
    a = base
    b = generate("molecular", size="small", out=tmp_path / "b", seed=0, properties=False)
    c = generate("molecular", size="small", out=tmp_path / "c", seed=1, properties=False)
    assert _shas(a) == _shas(b)
    assert _shas(a)["train"] != _shas(c)["train"]
    assert _shas(a)["ood_scan"] == _shas(c)["ood_scan"]  # rigid scans of the relaxed molecules: no randomness


def test_workers_label_the_same_frames_as_one_process(base, tmp_path):
    """`--workers 2` labels in two spawned processes: byte-identical splits, same order."""
    two = generate("molecular", size="small", out=tmp_path / "two", seed=0, properties=False, workers=2)
    assert _shas(two) == _shas(base)
    # reference properties: (structure, property) pairs in two processes, the manifest written as each ends
    parallel = fill_reference_properties(two, workers=2)
    one = fill_reference_properties(shutil.copytree(base, tmp_path / "one"))
    assert set(parallel) == {"ethanol", "malonaldehyde", "butane"}
    for mol, props in one.items():
        assert parallel[mol]["vibrations"]["frequencies_cm1"] == props["vibrations"]["frequencies_cm1"]
    assert load_manifest(two)["reference_properties"].keys() == parallel.keys()


def test_interrupted_run_resumes_to_the_same_data(base, tmp_path, monkeypatch):
    whole = base
    out = tmp_path / "cut"
    jobs = list(S.MOLECULAR.jobs)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(S.MOLECULAR, "jobs", [jobs[0], S.Job(jobs[1].name, interrupt), jobs[2]])
    with pytest.raises(KeyboardInterrupt):
        generate("molecular", size="small", out=out, seed=0, properties=False)
    assert (out / ".partial" / "progress.json").is_file() and not (out / "manifest.json").exists()
    assert (out / "train.extxyz").is_file() and not (out / "ood_600K.extxyz").exists()
    train_mtime = (out / "train.extxyz").stat().st_mtime_ns
    monkeypatch.setattr(S.MOLECULAR, "jobs", jobs)
    generate("molecular", size="small", out=out, seed=0, properties=False)
    assert (out / "train.extxyz").stat().st_mtime_ns == train_mtime  # done work is kept
    assert _shas(out) == _shas(whole)


def test_refuses_to_mix_settings_or_overwrite(base, tmp_path):
    out = base
    assert generate("molecular", size="small", out=out, seed=0, properties=False) == out  # done: no-op
    with pytest.raises(InputError, match="other settings"):
        generate("molecular", size="small", out=out, seed=5, properties=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        generate("molecular", size="small", out=busy, seed=0)
    with pytest.raises(InputError, match="unknown regime"):
        generate("plasma", out=tmp_path / "p")
    with pytest.raises(InputError, match="unknown size"):
        generate("molecular", size="huge", out=tmp_path / "p")
