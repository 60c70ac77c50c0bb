"""`optbench finetune --strategy / --lr-factors / --list-groups`: flags into typed config fields, and
the group listing that needs no training data."""

from __future__ import annotations

import pytest

from optbench.cli import build_parser, main
from optbench.cli_args import finetune_overrides
from optbench.config import FinetuneConfig


def test_flags_become_config_fields_and_replace_the_yamls_factors(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("train: t.xyz\nlr_factors: {embedding: 0.5, bond: 3}\nstrategy: 'freeze:angle'\n")
    args = build_parser().parse_args(["finetune", "--config", str(yaml_file), "--strategy", "freeze: readout,embedding",
                                      "--lr-factors", "interaction=0.1,bond=2"])
    cfg = FinetuneConfig.from_sources(args.config, finetune_overrides(args))
    assert cfg.strategy == "freeze:embedding,readout" and cfg.lr_factors == {"interaction": 0.1, "bond": 2.0}
    kept = FinetuneConfig.from_sources(yaml_file, {})
    assert kept.strategy == "freeze:angle" and kept.lr_factors == {"embedding": 0.5, "bond": 3.0}


def test_list_groups_needs_no_training_data(capsys):
    assert main(["finetune", "--list-groups", "--model", "chgnet", "--strategy", "freeze:readout"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "chgnet" in lines[0] and lines[1].split() == ["group", "tensors", "parameters", "trainable"]
    rows = {ln.split()[0]: [int(x) for x in ln.split()[1:]] for ln in lines[2:]}
    assert list(rows) == ["embedding", "radial", "interaction", "bond", "angle", "readout", "reference"]
    assert rows["readout"][2] == 0 < rows["readout"][1] and rows["embedding"][1] == rows["embedding"][2] > 0
    assert rows["reference"][2] == 0  # CHGNet's AtomRef is not trained (E0 refit sets it)


@pytest.mark.parametrize("argv,needle", [
    (["--strategy", "freeze:head"], "'head'"),
    (["--strategy", "lora:zero"], "integer rank"),
])
def test_list_groups_refuses_a_strategy_the_backbone_cannot_do(argv, needle, capsys):
    assert main(["finetune", "--list-groups", "--model", "chgnet", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
