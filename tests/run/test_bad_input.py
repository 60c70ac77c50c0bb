"""Bad input: exit code 2, one line naming the file and the field, no results.json."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from ase.io import read, write

from optbench.cli import main


def _write(path: Path, frames) -> Path:
    write(path, frames, format="extxyz")
    return path


@pytest.fixture
def frames(ethanol_small):
    return read(ethanol_small["train"], index=":4")


def _run(capsys, train, out, *extra):
    code = main(["finetune", "--model", "chgnet", "--train", str(train), "--max-steps", "1", "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def _assert_clean_failure(code, err, out, *needles):
    assert code == 2
    assert len(err) == 1 and err[0].startswith("optbench: error:")
    for needle in needles:
        assert needle in err[0], err[0]
    assert not (Path(out) / "results.json").exists()


def test_missing_energy_key(capsys, frames, tmp_path):
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out", "--energy-key", "REF_energy")
    _assert_clean_failure(code, err, tmp_path / "out", str(train), "REF_energy")


def test_nan_forces(capsys, frames, tmp_path):
    frames[1].calc.results["forces"][0, 0] = float("nan")
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out")
    _assert_clean_failure(code, err, tmp_path / "out", str(train), "forces", "frame 1")


def test_wrongly_shaped_forces(capsys, frames, tmp_path):
    for a in frames:
        a.arrays["myforces"] = a.calc.results["forces"][:, :2].repeat(2, axis=1)[:, :3]
    frames[2].info["bad"] = 1
    path = tmp_path / "t.xyz"
    _write(path, frames)
    text = path.read_text().replace("myforces:R:3", "myforces:R:2")
    lines = text.splitlines()
    path.write_text("\n".join(" ".join(ln.split()[:-1]) if len(ln.split()) == 10 else ln for ln in lines) + "\n")
    code, err = _run(capsys, path, tmp_path / "out", "--forces-key", "myforces")
    _assert_clean_failure(code, err, tmp_path / "out", str(path), "myforces", "shape")


def test_unknown_element(capsys, frames, tmp_path):
    frames[0].numbers[0] = 95  # americium: beyond CHGNet's 94 elements
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out")
    _assert_clean_failure(code, err, tmp_path / "out", str(train), "species", "Am")


def test_empty_file(capsys, tmp_path):
    train = tmp_path / "empty.xyz"
    train.write_text("")
    code, err = _run(capsys, train, tmp_path / "out")
    _assert_clean_failure(code, err, tmp_path / "out", str(train), "empty")


def test_unknown_optimizer(capsys, frames, tmp_path):
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out", "--optimizer", "adamx")
    _assert_clean_failure(code, err, tmp_path / "out", "optimizer", "adamx")


@pytest.mark.parametrize("lr", ["0", "-1e-3"])
def test_non_positive_lr(capsys, frames, tmp_path, lr):
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out", f"--lr={lr}")
    _assert_clean_failure(code, err, tmp_path / "out", "lr")


def test_unwritable_output(capsys, frames, tmp_path):
    train = _write(tmp_path / "t.xyz", frames)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = blocker / "run"  # a path below a regular file can never be created, even as root
    code, err = _run(capsys, train, out)
    _assert_clean_failure(code, err, out, "out")
    assert stat.S_ISREG(blocker.stat().st_mode)


def test_bad_loss_weight_name(capsys, frames, tmp_path):
    train = _write(tmp_path / "t.xyz", frames)
    code, err = _run(capsys, train, tmp_path / "out", "--loss-weights", "energy=1,force=10")
    _assert_clean_failure(code, err, tmp_path / "out", "loss_weights")


def test_config_file_field_is_named(capsys, frames, tmp_path):
    train = _write(tmp_path / "t.xyz", frames)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"train: {train}\nbatch_size: zero\n")
    code = main(["finetune", "--config", str(cfg), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    _assert_clean_failure(code, err, tmp_path / "out", str(cfg), "batch_size")
