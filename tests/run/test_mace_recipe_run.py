"""`mace_recipe` trained on real CHGNet with tiny real-DFT data: the LR falls on a plateau of the
validation loss, stage two switches LR and energy weight after 3/4 of the budget, the EMA weights are
what is evaluated and saved, and a run stopped mid-way resumes to the uninterrupted numbers."""

from __future__ import annotations

import pytest
import torch

from optbench.config import FinetuneConfig
from optbench.layout import RunDir
from optbench.run import finetune

STEPS, START, LR = 12, 9, 1e-2  # stage two after max(1, 12 // 4 * 3) = 9 steps


def _config(ethanol_small, out, **kw) -> FinetuneConfig:
    return FinetuneConfig(**{
        "model": "chgnet", "train": ethanol_small["train"], "optimizer": "mace_recipe", "lr": LR, "batch_size": 4,
        "max_steps": STEPS, "seed": 0, "eval_every": 1, "checkpoint_every": 2, "valid_fraction": 0.25,
        "recipe": {"scheduler_patience": 0}, "out": out, **kw})


def _rows(out) -> tuple[list[dict], list[dict]]:
    """(training rows, validation rows) of metrics.jsonl, without timings."""
    rows = [{k: v for k, v in m.items() if k != "elapsed_s"} for m in RunDir(out).metrics()]
    return [m for m in rows if "loss" in m], [m for m in rows if "valid_loss" in m]


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "phases_s", "provenance")}


def _plateau_steps(values: list[tuple[int, float]]) -> list[int]:
    """Where torch's ReduceLROnPlateau (mode min, threshold 1e-4 relative, patience 0) cuts the LR."""
    best, cuts = float("inf"), []
    for step, value in values:
        if value < best * (1 - 1e-4):
            best = value
        else:
            cuts.append(step)
    return cuts


@pytest.fixture(scope="module")
def straight(ethanol_small, tmp_path_factory):
    cfg = _config(ethanol_small, tmp_path_factory.mktemp("recipe") / "straight")
    return cfg, finetune(cfg)


def test_the_lr_falls_on_a_plateau_of_the_validation_loss(straight):
    cfg, result = straight
    train, valid = _rows(cfg.out)
    plateau = result["recipe"]["plateau"]
    assert plateau["metric"] == "valid_loss" and plateau["factor"] == 0.8 and plateau["patience_validations"] == 0
    cuts = [r["step"] for r in plateau["reductions"]]
    assert cuts and cuts == _plateau_steps([(v["step"], v["valid_loss"]) for v in valid if v["step"] < START])
    lrs = {r["step"]: r["lr"] for r in train}
    for step in range(1, START):
        assert lrs[step + 1] == pytest.approx(lrs[step] * (0.8 if step in cuts else 1.0), rel=1e-12), step
    assert [r["lr"] for r in plateau["reductions"]] == pytest.approx([lrs[s + 1] for s in cuts])


def test_stage_two_switches_lr_and_energy_weight_at_its_step(straight):
    cfg, result = straight
    two = result["recipe"]["stage_two"]
    assert two["start_step"] == START and two["started"] and two["lr"] == pytest.approx(0.1 * LR)
    assert two["loss_weights"] == {"energy": 1000.0, "forces": 10.0, "stress": 1.0}  # x 1000, x 1, x 10
    train, _ = _rows(cfg.out)
    assert [r["step"] for r in train] == list(range(1, STEPS + 1))
    for r in train:
        w_energy = 1000.0 if r["step"] > START else 1.0
        assert r["loss"] == pytest.approx(w_energy * r["loss_energy"] + 10 * r["loss_forces"], rel=1e-5), r["step"]
        assert (r["lr"] == pytest.approx(0.1 * LR)) == (r["step"] > START), r["step"]


def test_the_ema_weights_are_evaluated_and_saved(straight):
    from optbench.backbones import load_backbone

    cfg, result = straight
    assert result["recipe"]["ema"] == {"decay": 0.99, "warmup": True}
    run = RunDir(cfg.out)
    last = torch.load(run.checkpoint("last"), weights_only=False)
    final = torch.load(run.checkpoint("final"), weights_only=False)["model_state"]
    names = [n for n, _ in load_backbone("chgnet").named_parameters()]
    assert last["ema_updates"] == STEPS and len(last["ema"]) == len(names)
    for name, shadow in zip(names, last["ema"], strict=True):
        assert torch.equal(final[name], shadow), name
    assert any(not torch.equal(last["model_state"][n], final[n]) for n in names)  # the trained weights differ


class _Stopped(Exception):
    pass


@pytest.mark.parametrize("stop_at", [7, 11])  # before stage two (plateau state), after it (stage, EMA count)
def test_a_run_stopped_mid_way_resumes_to_the_same_numbers(straight, ethanol_small, tmp_path, monkeypatch, stop_at):
    cfg = _config(ethanol_small, tmp_path / "stopped")
    append = RunDir.append_metrics

    def stop(self, record):
        if record.get("step") == stop_at and "loss" in record:
            raise _Stopped  # as a kill during step `stop_at`: last.pt holds the step before
        append(self, record)

    monkeypatch.setattr(RunDir, "append_metrics", stop)
    with pytest.raises(_Stopped):
        finetune(cfg)
    monkeypatch.undo()
    assert not RunDir(cfg.out).results_path.exists()
    resumed = finetune(cfg)
    ref_cfg, ref = straight
    assert _numbers(resumed) == _numbers(ref)
    assert _rows(cfg.out) == _rows(ref_cfg.out)


def test_without_a_validation_split_the_plateau_watches_the_training_loss(ethanol_small, tmp_path):
    cfg = _config(ethanol_small, tmp_path / "noval", valid_fraction=0.0, eval_every=2, max_steps=8, seed=2,
                  recipe={"scheduler_patience": 0, "stage_two": False})
    result = finetune(cfg)
    plateau = result["recipe"]["plateau"]
    assert plateau["metric"] == "train_loss" and result["recipe"]["stage_two"]["start_step"] is None
    assert "ReduceLROnPlateau steps on the mean training loss" in (cfg.out / "log.txt").read_text()
    train, valid = _rows(cfg.out)
    assert not valid
    windows = [(s, (train[s - 2]["loss"] + train[s - 1]["loss"]) / 2) for s in range(2, 9, 2)]
    cuts = [r["step"] for r in plateau["reductions"]]
    assert cuts and cuts == _plateau_steps(windows)
