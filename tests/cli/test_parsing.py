"""The command line parses: each command's flags land in the right fields with the right types,
--help shows every default, and a bad flag is exit 2 with argparse's usage line naming it."""

from __future__ import annotations

import argparse

import pytest

from optbench.cli import _leaf_parsers, build_parser, main
from optbench.cli_args import finetune_overrides


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def leaves() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {p.prog.removeprefix("optbench "): p for p in _leaf_parsers(sub)}


def test_every_command_is_reachable():
    assert set(leaves()) == {"finetune", "evaluate", "data generate", "data list", "data fetch", "property",
                             "curvature", "run", "report", "export", "cache info", "cache clear"}


def test_finetune_flags_become_typed_config_fields():
    over = finetune_overrides(parse("finetune", "--config", "c.yaml", "--lr", "3e-4", "--max-steps", "7",
                                    "--optimizer", "sgd", "--loss-weights", "energy=2,forces=5", "--schedule", "cosine",
                                    "--refine", "lbfgs", "--seed", "3", "--weight-decay", "0.01", "--out", "o"))
    assert over == {"lr": 3e-4, "max_steps": 7, "optimizer": "sgd", "loss_weights": {"energy": 2.0, "forces": 5.0},
                    "schedule": "cosine", "refine": "lbfgs", "seed": 3, "weight_decay": 0.01, "out": "o"}
    args = parse("finetune", "--config", "c.yaml")
    assert args.config == "c.yaml" and args.restart is False and args.func.__name__ == "_cmd_finetune"


def test_evaluate_collects_named_test_sets():
    args = parse("evaluate", "--model", "chgnet", "--test", "id=a.xyz", "--test", "ood=b.xyz", "--out", "e.json",
                 "--batch-size", "8")
    assert args.test == [("id", "a.xyz"), ("ood", "b.xyz")] and args.batch_size == 8 and args.device == "cpu"
    assert args.energy_key is None  # unset: the command uses 'energy' and does not insist the key exists


def test_data_commands():
    args = parse("data", "generate", "crystal", "--out", "d", "--size", "full", "--seed", "4")
    assert (args.regime, args.out, args.size, args.seed) == ("crystal", "d", "full", 4)
    assert parse("data", "generate", "liquid", "--out", "d").size == "small"
    args = parse("data", "fetch", "ethanol_revmd17", "--out", "d", "--from", "x.tar")
    assert (args.name, args.from_path) == ("ethanol_revmd17", "x.tar")
    assert parse("data", "list").func.__name__ == "_cmd_data_list"


def test_property_curvature_run_report():
    args = parse("property", "phonons", "--model", "reference", "--structure", "s.xyz", "--dataset", "ds", "--out", "o")
    assert (args.name, args.model, args.dataset, args.device) == ("phonons", "reference", "ds", "cpu")
    args = parse("curvature", "--run", "r", "--data", "d.xyz", "--out", "o", "--k", "4", "--gauss-newton")
    assert (args.k, args.gauss_newton, args.checkpoint, args.n_structures, args.lanczos_iter) == (4, True, "final", 32, None)
    args = parse("run", "s.yaml", "--executor", "process", "--workers", "3")
    assert (args.study, args.preset, args.executor, args.workers, args.out) == ("s.yaml", None, "process", 3, None)
    assert parse("run", "--preset", "quick").study is None
    assert parse("run", "--preset", "strategies").preset == "strategies"
    assert parse("report", "folder", "--threads", "2").threads == 2
    args = parse("run", "--preset", "paper-cpu", "--dry-run")
    assert (args.preset, args.dry_run) == ("paper-cpu", True) and not parse("run").dry_run
    assert (parse("export", "study", "dest").folder, parse("export", "study", "dest").dest) == ("study", "dest")


@pytest.mark.parametrize("command", sorted(leaves()))
def test_help_prints_every_default(command, capsys):
    parser = leaves()[command]
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    checked = []
    for action in parser._actions:
        default = action.default
        if action.help in (None, argparse.SUPPRESS) or action.required or not action.option_strings:
            continue
        if command == "finetune":  # finetune's defaults come from FinetuneConfig, not from argparse
            from optbench.config import FinetuneConfig

            field = FinetuneConfig.model_fields.get(action.dest)
            if field is None or field.is_required() or action.dest in ("loss_weights", "tests"):
                continue
            default = field.get_default(call_default_factory=True)
        if any(default is x for x in (None, False, argparse.SUPPRESS)):
            continue
        assert f"(default: {default})" in text, (command, action.dest)
        checked.append(action.dest)
    # the commands without a default to show
    assert checked or command in ("data list", "data fetch", "report", "export", "cache info", "cache clear")


@pytest.mark.parametrize("argv, needle", [
    (["finetune", "--lr", "fast"], "--lr"),
    (["finetune", "--schedule", "sometimes"], "--schedule"),
    (["finetune", "--loss-weights", "energy=heavy"], "--loss-weights"),
    (["finetune", "--lr-factors", "readout=fast"], "--lr-factors"),
    (["finetune", "--lr-factors", "readout"], "--lr-factors"),
    (["finetune", "--no-such-flag"], "--no-such-flag"),
    (["evaluate", "--model", "chgnet", "--out", "o.json"], "--test"),
    (["evaluate", "--model", "chgnet", "--test", "a.xyz", "--out", "o.json"], "NAME=VALUE"),
    (["data", "generate", "plasma", "--out", "d"], "regime"),
    (["property", "band_gap", "--model", "m", "--structure", "s", "--out", "o"], "name"),
    (["curvature", "--run", "r", "--data", "d", "--out", "o", "--checkpoint", "best"], "--checkpoint"),
    (["curvature", "--run", "r", "--data", "d", "--out", "o", "--k", "ten"], "--k"),
    (["run", "--executor", "slurm"], "--executor"),
    (["run", "--workers", "two"], "--workers"),
    (["report"], "folder"),
    (["train"], "command"),
])
def test_a_bad_flag_is_exit_2_naming_it(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "usage: optbench" in err and needle in err.splitlines()[-1], err
