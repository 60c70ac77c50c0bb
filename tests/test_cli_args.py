"""The command line: MACE's flag names beside optbench's, a bare --ema, --help with defaults, --version."""

from __future__ import annotations

import pytest

import optbench
from optbench.cli import build_parser, main
from optbench.cli_args import finetune_overrides


def _overrides(*argv: str) -> dict:
    return finetune_overrides(build_parser().parse_args(["finetune", *argv]))


def test_mace_flag_names_parse_to_the_same_fields():
    ours = _overrides("--train", "a.xyz", "--valid", "v.xyz", "--energy-key", "E", "--forces-key", "F",
                      "--virial-key", "V", "--batch-size", "2", "--e0", "average", "--test", "id=t.xyz")
    mace = _overrides("--train_file", "a.xyz", "--valid_file", "v.xyz", "--energy_key", "E", "--forces_key", "F",
                      "--virials_key", "V", "--batch_size", "2", "--E0s", "average", "--test", "id=t.xyz")
    assert ours == mace == {"train": "a.xyz", "valid": "v.xyz", "energy_key": "E", "forces_key": "F",
                            "virial_key": "V", "batch_size": 2, "e0": "average", "tests": {"id": "t.xyz"}}
    assert _overrides("--foundation_model", "small", "--max_num_epochs", "3", "--test_file", "t.xyz") == {
        "foundation_model": "small", "max_num_epochs": 3, "test_file": "t.xyz"}
    assert _overrides() == {}  # flags not given leave the YAML and the defaults alone


def test_options_added_after_the_finetune_flags_keep_a_none_default():
    import argparse

    from optbench.cli_args import add_finetune_arguments

    parser = argparse.ArgumentParser()
    add_finetune_arguments(parser)
    parser.add_argument("--threads", type=int)  # as a later, command-wide option is added
    args = parser.parse_args([])
    assert args.threads is None and not hasattr(args, "lr")


def test_bare_ema_and_ema_with_a_decay():
    assert _overrides("--ema") == {"ema": True}
    assert _overrides("--ema", "0.9") == {"ema": 0.9}
    assert _overrides("--ema", "--ema_decay", "0.995") == {"ema": True, "ema_decay": 0.995}


def test_help_shows_defaults_and_units(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # unwrap argparse's line breaks
    for expected in ("learning rate (peak of the schedule) (default: 0.001)", "(default: 300)",
                     "extxyz key of the forces (eV/Å) (default: forces)", "(default: refit)",
                     "--max_num_epochs", "--E0s", "(GPa)^2"):
        assert expected in text, expected
    with pytest.raises(SystemExit):
        main(["curvature", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "structures in the loss (default: 32)" in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"optbench {optbench.__version__}"
