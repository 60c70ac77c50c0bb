"""`loss: huber` reaches the training step, from a YAML, the flags or a MACE file, and leaves the run
identity of an MSE run alone (the terms themselves: tests/run/test_loss.py)."""

from __future__ import annotations

import numpy as np
import pytest

from optbench.cli import build_parser
from optbench.cli_args import finetune_overrides
from optbench.config import FinetuneConfig
from optbench.errors import InputError
from optbench.loss import compute_loss


def _flags(*flags: str) -> FinetuneConfig:
    args = build_parser().parse_args(["finetune", "--train", "t.xyz", *flags])
    return FinetuneConfig.from_sources(None, finetune_overrides(args))


def test_the_loop_steps_on_the_huber_loss(run_config, tmp_path):
    from optbench.run import FinetuneRun

    cfg = FinetuneConfig(**{**run_config, "e0": "keep", "loss": "huber", "huber_delta": 0.02, "out": tmp_path / "h"})
    loop = FinetuneRun(cfg).prepare()
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(loop.train_set))
    batch = loop.train_set.batch(order[: cfg.batch_size])
    loop.backbone.model.train()
    huber, huber_parts = compute_loss(loop.backbone, batch, cfg.loss_weights, huber_delta=0.02)
    mse, _ = compute_loss(loop.backbone, batch, cfg.loss_weights)
    loss, parts, _ = loop.step(batch)
    assert loss == pytest.approx(float(huber), rel=1e-6) and loss != pytest.approx(float(mse), rel=1e-2)
    assert float(parts["forces"]) == pytest.approx(float(huber_parts["forces"]), rel=1e-6)


def test_flags_and_identity():
    cfg = _flags("--loss", "huber", "--huber-delta", "0.05")
    assert (cfg.loss, cfg.huber_delta) == ("huber", 0.05)
    assert _flags("--loss", "huber", "--huber_delta", "0.02").huber_delta == 0.02  # MACE's spelling
    mse = _flags()
    assert (mse.loss, mse.huber_delta) == ("mse", 0.01) and "loss" not in mse.identity()
    assert _flags("--loss", "huber").hash() not in (mse.hash(), cfg.hash())
    assert _flags("--huber-delta", "0.05").hash() == mse.hash()  # no part of an MSE run's numbers
    with pytest.raises(InputError, match="greater than 0"):
        _flags("--huber-delta", "0")
    with pytest.raises(SystemExit):
        _flags("--loss", "l1")


@pytest.mark.parametrize("mace_loss, expected", [("huber", "huber"), ("weighted", "mse"), ("stress", "mse"), ("universal", "mse")])
def test_maces_loss_names_in_a_mace_yaml(tmp_path, mace_loss, expected):
    import yaml

    path = tmp_path / "mace.yaml"
    path.write_text(yaml.safe_dump({"train_file": "t.xyz", "loss": mace_loss, "huber_delta": 0.005}))
    cfg = FinetuneConfig.from_sources(path)
    assert (cfg.loss, cfg.huber_delta) == (expected, 0.005)
    ignored = " ".join(n for n in cfg._notes if "ignored" in n)
    assert ("loss" in ignored) == (mace_loss == "universal")  # its per-force delta has no equivalent
