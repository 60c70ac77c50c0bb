"""Early stopping with EMA and with ScheduleFree reports exactly the weights that scored best."""

from __future__ import annotations

import json

import pytest

from optbench.backbones import register_backbone
from optbench.train import finetune
from tests.curvature import toy

from .data import rattled_ethanol, strained_copper


def _evaluations(run_dir):
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x for x in lines if "valid_loss" in x]


def _check_best_kept(result, run_dir):
    evals = _evaluations(run_dir)
    best = min(evals, key=lambda x: (x["valid_loss"], x["step"]))
    assert any(x["valid_loss"] > best["valid_loss"] for x in evals if x["step"] > best["step"]), \
        "no worse evaluation after the best one: the test would not bite"
    assert result["best_valid_step"] == best["step"]
    final = result["metrics"]["final"]["valid"]
    assert final["forces_mae"] == pytest.approx(best["valid_forces_mae"], rel=1e-9)
    assert final["energy_mae"] == pytest.approx(best["valid_energy_mae"], rel=1e-9)
    assert result["valid_loss"] == pytest.approx(best["valid_loss"], rel=1e-9)


@pytest.fixture(scope="module")
def ethanol_emt(tmp_path_factory):
    return rattled_ethanol(tmp_path_factory.mktemp("emt") / "train.xyz", 16)


@pytest.mark.parametrize("optimizer,lr,extra", [("adamw", 0.3, {"ema_decay": 0.8}), ("schedulefree", 0.3, {})])
def test_toy_early_stopping_keeps_best_eval_weights(optimizer, lr, extra, ethanol_emt, tmp_path):
    register_backbone("toy", f"{toy.__name__}:load")
    out = tmp_path / "run"
    res = finetune(dict(model="toy", train=ethanol_emt, optimizer=optimizer, lr=lr, batch_size=4, max_steps=60,
                        eval_every=2, patience=3, valid_fraction=0.25, loss_weights={"stress": 0.0},
                        seed=0, out=out, **extra))
    _check_best_kept(res, out)


@pytest.fixture(scope="module")
def copper_emt(tmp_path_factory):
    return strained_copper(tmp_path_factory.mktemp("cu") / "train.xyz", 12)


@pytest.mark.parametrize("optimizer,lr,extra", [("adamw", 3e-2, {"ema_decay": 0.5}), ("schedulefree", 5e-2, {})])
def test_chgnet_early_stopping_keeps_best_eval_weights(optimizer, lr, extra, copper_emt, tmp_path):
    out = tmp_path / "run"
    res = finetune(dict(model="chgnet", train=copper_emt, optimizer=optimizer, lr=lr, batch_size=3, max_steps=16,
                        eval_every=1, patience=2, valid_fraction=0.25, seed=0, out=out, **extra))
    _check_best_kept(res, out)
