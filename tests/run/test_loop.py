"""The run package's public API: `FinetuneRun.prepare()` gives the loop, `TrainingLoop.step()` one step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from optbench.config import FinetuneConfig
from optbench.layout import RunDir


def test_step_is_the_loops_step(run_config, tmp_path):
    """A step taken through the public API gives the loss that the run logs for its first step."""
    from optbench.run import FinetuneRun, TrainingLoop, finetune

    cfg = FinetuneConfig(**{**run_config, "e0": "keep", "out": tmp_path / "a"})
    loop = FinetuneRun(cfg).prepare()
    assert isinstance(loop, TrainingLoop) and loop.total_steps == 6
    order = np.random.default_rng([cfg.seed, 0]).permutation(len(loop.train_set))
    before = [p.detach().clone() for p in loop.params]
    loop.backbone.model.train()
    loss, parts, grad_norm = loop.step(loop.train_set.batch(order[: cfg.batch_size]))
    assert math.isfinite(loss) and math.isfinite(grad_norm) and {"energy", "forces"} <= set(parts)
    assert any(not torch.equal(a, b) for a, b in zip(before, loop.params))

    run = FinetuneConfig(**{**run_config, "e0": "keep", "out": tmp_path / "b"})
    finetune(run)
    first = next(m for m in RunDir(run.out).metrics() if "loss" in m)
    assert first["loss"] == pytest.approx(loss, rel=1e-6)


def test_old_import_paths_still_work():
    import optbench.run as run
    import optbench.study.aggregate as old_aggregate
    import optbench.train as train
    from optbench.report import aggregate

    assert train.finetune is run.finetune and train.FinetuneRun is run.FinetuneRun
    assert train.EMA is run.EMA and train.lr_lambda is run.lr_lambda and train.TrainState is run.TrainState
    assert (train.RESULTS, train.METRICS, train.CONFIG, train.ZERO_SHOT, train.CKPT_DIR) == (
        "results.json", "metrics.jsonl", "config.yaml", "zero_shot.json", "checkpoints")
    from optbench.train import fit_reference_energies  # noqa: F401
    assert old_aggregate.StudyData is aggregate.StudyData and old_aggregate.mean_ci is aggregate.mean_ci
