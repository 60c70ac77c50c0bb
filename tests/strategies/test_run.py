"""A real CHGNet run under a strategy: frozen groups stay bit-identical, each group trains at its own
LR, results.json records the strategy, and a run interrupted mid-way resumes to the same numbers."""

from __future__ import annotations

import json

import pytest
import torch

from optbench.backbones import load_backbone
from optbench.config import FinetuneConfig
from optbench.layout import RunDir
from optbench.run import TrainingLoop
from optbench.strategies import group_table
from optbench.train import finetune

STRATEGY, FACTORS = "freeze:embedding,readout", {"interaction": 0.5, "bond": 2.0}


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8))


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "phases_s", "provenance")}


@pytest.fixture
def config(run_config, tmp_path):
    return FinetuneConfig(**{**run_config, "strategy": STRATEGY, "lr_factors": FACTORS, "out": tmp_path / "straight"})


@pytest.fixture
def straight(config):
    return finetune(config)


def test_frozen_groups_stay_bit_identical_and_the_rest_trains(config, straight):
    run = RunDir(config.out)
    start = torch.load(run.checkpoint("start"), weights_only=False)["model_state"]
    final = torch.load(run.checkpoint("final"), weights_only=False)
    bb = load_backbone("chgnet")
    groups = bb.parameter_groups()
    for name in groups["embedding"] + groups["readout"]:
        assert _same_bits(final["model_state"][name], start[name]), name
        assert _same_bits(final["model_state"][name], dict(bb.model.named_parameters())[name].detach()), name
    for group in ("radial", "interaction", "bond", "angle"):
        assert any(not torch.equal(final["model_state"][n], start[n]) for n in groups[group]), group
    saved = load_backbone(config.out)  # the model folder written at the end holds the same frozen weights
    for name in groups["embedding"]:
        assert _same_bits(dict(saved.model.named_parameters())[name].detach(), start[name])
    lrs = {g["group"]: g["lr"] for g in final["optimizer_state"]["param_groups"]}
    assert list(lrs) == ["radial", "interaction", "bond", "angle"]  # frozen groups are not in the optimizer
    assert lrs == pytest.approx({"radial": 1e-3, "interaction": 5e-4, "bond": 2e-3, "angle": 1e-3})
    frozen = {r["group"]: r["trainable"] for r in group_table(bb)}
    on_disk = json.loads(run.results_path.read_text())
    assert on_disk["strategy"] == STRATEGY and on_disk["lr_factors"] == FACTORS
    assert on_disk["trainable_parameters"] == sum(frozen.values()) - frozen["embedding"] - frozen["readout"]
    steps = [x for x in run.metrics() if "loss" in x]
    assert {x["lr"] for x in steps} == {1e-3}  # the base LR is logged, not a group's


def test_interrupted_run_resumes_to_the_same_numbers(config, straight, monkeypatch):
    after_step = TrainingLoop._after_step

    def stop_at_4(self, state, run, t0):
        stop = after_step(self, state, run, t0)
        if state.step == 4:  # last.pt was just written (checkpoint_every 2)
            raise KeyboardInterrupt
        return stop

    resumed = config.model_copy(update={"out": config.out.parent / "resumed"})
    monkeypatch.setattr(TrainingLoop, "_after_step", stop_at_4)
    with pytest.raises(KeyboardInterrupt):
        finetune(resumed)
    assert not RunDir(resumed.out).results_path.exists()
    monkeypatch.setattr(TrainingLoop, "_after_step", after_step)
    assert _numbers(finetune(resumed)) == _numbers(straight)


def test_the_refinement_keeps_frozen_groups_and_says_what_does_not_apply(run_config, tmp_path):
    """L-BFGS after a strategy: the same trainable parameters, training structures only, one step size."""
    cfg = FinetuneConfig(**{**run_config, "max_steps": 2, "strategy": f"{STRATEGY}+replay:0.25", "lr_factors": FACTORS,
                            "refine": "lbfgs", "refine_steps": 1, "refine_structures": 4, "out": tmp_path / "refined"})
    result = finetune(cfg)
    assert result["status"] == "completed" and result["refine"]["status"] == "completed"
    assert len(result["refine"]["losses"]) == 2  # one step, then the loss where it ended
    run = RunDir(cfg.out)
    start = torch.load(run.checkpoint("start"), weights_only=False)["model_state"]
    refined = torch.load(run.checkpoint("refined"), weights_only=False)["model_state"]
    final = torch.load(run.checkpoint("final"), weights_only=False)["model_state"]
    groups = load_backbone("chgnet").parameter_groups()
    for name in groups["embedding"] + groups["readout"]:
        assert _same_bits(refined[name], start[name]), name
    assert any(not torch.equal(refined[n], final[n]) for n in groups["interaction"])  # the refinement stepped
    log = (cfg.out / "log.txt").read_text()
    assert "L-BFGS refinement: lr_factors and replay do not apply to it" in log
