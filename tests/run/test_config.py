"""FinetuneConfig: YAML and flags (flags win, per field), unknown keys and wrong types as one
InputError naming file and field, and a hash that identifies a run across processes and versions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from optbench.cli import build_parser
from optbench.cli_args import finetune_overrides
from optbench.config import FinetuneConfig
from optbench.errors import InputError

# The identity of this config (every field at its default) as optbench has always hashed it: a
# change here means existing run folders no longer resume (their config_hash stops matching).
FIXED = {"train": "/data/train.xyz", "tests": {"id": "/data/test.xyz"}}
FIXED_HASH = "ec38b5c6e7ccd9d8"


def yaml_file(tmp_path: Path, data: dict | str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def from_command_line(path: Path | None, *flags: str) -> FinetuneConfig:
    argv = ["finetune", *(["--config", str(path)] if path else []), *flags]
    args = build_parser().parse_args(argv)
    return FinetuneConfig.from_sources(args.config, finetune_overrides(args))


def test_flags_override_the_yaml_field_by_field(tmp_path):
    path = yaml_file(tmp_path, {"train": "t.xyz", "lr": 1e-2, "max_steps": 10, "optimizer": "sgd",
                                "loss_weights": {"energy": 2.0, "forces": 5.0}})
    cfg = from_command_line(path, "--lr", "3e-4", "--loss-weights", "forces=1")
    assert cfg.lr == 3e-4 and cfg.max_steps == 10 and cfg.optimizer == "sgd"  # flag wins; the rest from the YAML
    assert cfg.loss_weights.model_dump() == {"energy": 2.0, "forces": 1.0, "stress": 0.1}  # merged per weight
    assert cfg.batch_size == FinetuneConfig.model_fields["batch_size"].default  # neither: the default
    assert from_command_line(path).lr == 1e-2  # flags not given leave the YAML alone
    assert FinetuneConfig.from_sources(path, {"lr": None}).lr == 1e-2  # None is "not given"


def test_flags_alone_and_mace_names_in_the_yaml(tmp_path):
    assert from_command_line(None, "--train", "t.xyz", "--seed", "5").seed == 5
    path = yaml_file(tmp_path, {"train_file": "t.xyz", "batch_size": 3, "max_num_epochs": 2, "foundation_model": "small"})
    cfg = FinetuneConfig.from_sources(path)
    assert cfg.train == Path("t.xyz") and cfg.batch_size == 3 and cfg.model.startswith("mace")


@pytest.mark.parametrize("data, field, needle", [
    ({"train": "t.xyz", "learning_rate": 0.1}, "learning_rate", "unknown field"),
    ({"train": "t.xyz", "lr": "fast"}, "lr", "number"),
    ({"train": "t.xyz", "lr": -1.0}, "lr", "greater than 0"),
    ({"train": "t.xyz", "batch_size": 0}, "batch_size", "greater than or equal to 1"),
    ({"train": "t.xyz", "batch_size": 2.5}, "batch_size", "integer"),
    ({"train": "t.xyz", "schedule": "sometimes"}, "schedule", "constant"),
    ({"train": "t.xyz", "loss_weights": {"force": 1.0}}, "loss_weights", "unknown loss weight"),
    ({"train": "t.xyz", "seed": 2**32}, "seed", "less than"),
    ({"lr": 1e-3}, "train", "training set is required"),
])
def test_a_bad_field_is_one_input_error_naming_file_and_field(tmp_path, data, field, needle):
    path = yaml_file(tmp_path, data)
    with pytest.raises(InputError) as err:
        FinetuneConfig.from_sources(path)
    assert err.value.file == str(path) and err.value.field == field and needle in str(err.value), str(err.value)


def test_unreadable_yaml_names_the_line(tmp_path):
    with pytest.raises(InputError, match=r"not valid YAML \(mapping values are not allowed here at line 2\)"):
        FinetuneConfig.from_sources(yaml_file(tmp_path, "train: t.xyz\n  lr: 1\n"))
    with pytest.raises(InputError, match="mapping"):
        FinetuneConfig.from_sources(yaml_file(tmp_path, "- a\n- b\n"))
    with pytest.raises(InputError, match="not found"):
        FinetuneConfig.from_sources(tmp_path / "missing.yaml")


def test_the_hash_is_pinned_and_the_same_in_a_fresh_process():
    assert FinetuneConfig(**FIXED).hash() == FIXED_HASH
    code = f"from optbench.config import FinetuneConfig; print(FinetuneConfig(**{FIXED!r}).hash())"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip() == FIXED_HASH


def test_the_hash_follows_the_numbers_not_where_they_are_written(tmp_path, monkeypatch):
    base = FinetuneConfig(**FIXED)
    for same in ({"out": "elsewhere"}, {"checkpoint_every": 7}, {"lr": 1e-3}, {"loss_weights": {"energy": 1.0}}):
        assert FinetuneConfig(**FIXED, **same).hash() == base.hash(), same
    for other in ({"lr": 2e-3}, {"seed": 1}, {"optimizer": "sgd"}, {"loss_weights": {"stress": 0.0}},
                  {"tests": {"ood": "/data/test.xyz"}}):
        assert FinetuneConfig(**{**FIXED, **other}).hash() != base.hash(), other
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.xyz").write_text("")
    assert FinetuneConfig(train="t.xyz").hash() == FinetuneConfig(train=tmp_path / "t.xyz").hash()
    saved = {k: v for k, v in base.to_yaml_dict().items() if k != "config_hash"}
    assert FinetuneConfig.from_sources(yaml_file(tmp_path, saved, "saved.yaml")).hash() == base.hash()  # round trip
