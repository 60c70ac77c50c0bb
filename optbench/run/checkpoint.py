"""Checkpoints of a run: `save` writes RUN_DIR/checkpoints/<tag>.pt, `resume` restores `last.pt` exactly.

start/mid/final/refined hold the weights and the optimizer state (analysed by optbench.curvature);
last also holds the scheduler, the EMA (and its update count), the optimizer's recipe (plateau
scheduler, stage), the best weights, the loop counters and the torch RNG, so a killed run resumes to
the numbers of an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from optbench.io import torch_save
from optbench.layout import RunDir


@dataclass
class TrainState:
    """The loop's counters, saved in last.pt."""

    step: int = 0
    elapsed_s: float = 0.0
    metrics_lines: int = 0
    first_loss: float | None = None
    best_valid: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0
    stopped_early: bool = False
    diverged: bool = False


def save(loop, run: RunDir, tag: str, state: TrainState | None = None, optimizer_state: bool = True) -> None:
    """Checkpoint `tag` of a `TrainingLoop` (after refinement its optimizer is the L-BFGS one)."""
    data = {
        "model_state": loop.backbone.model.state_dict(),
        "optimizer": loop.config.optimizer if tag != "refined" else "lbfgs",
        "optimizer_state": loop.optimizer.state_dict() if optimizer_state else None,
        "step": state.step if state else 0,
        "config_hash": loop.config.hash(),
    }
    if tag == "last":
        data.update(
            scheduler_state=loop.scheduler.state_dict() if loop.scheduler else None,
            ema=loop.ema.shadow if loop.ema else None,
            ema_updates=loop.ema.updates if loop.ema else 0,
            recipe_state=loop.recipe.state_dict() if loop.recipe else None,
            best_state=loop.best_state,
            train_state=asdict(state),
            torch_rng=torch.get_rng_state(),
        )
    torch_save(run.checkpoint(tag), data)


def resume(loop, folder, run: RunDir) -> TrainState:
    """Restore a `TrainingLoop` from last.pt (checked by `folder`, a RunFolder); the metrics logged
    after it are dropped."""
    ckpt = folder.load_checkpoint(run.checkpoint("last"), loop.config.device)
    loop.backbone.model.load_state_dict(ckpt["model_state"])
    loop.optimizer.load_state_dict(ckpt["optimizer_state"])
    if loop.scheduler and ckpt["scheduler_state"]:
        loop.scheduler.load_state_dict(ckpt["scheduler_state"])
    if loop.ema and ckpt["ema"] is not None:
        for s, v in zip(loop.ema.shadow, ckpt["ema"]):
            s.copy_(v)
        loop.ema.updates = ckpt.get("ema_updates", 0)
    if loop.recipe and ckpt.get("recipe_state") is not None:
        loop.recipe.load_state_dict(ckpt["recipe_state"])
    loop.best_state = ckpt["best_state"]
    torch.set_rng_state(ckpt["torch_rng"])
    state = TrainState(**ckpt["train_state"])
    run.truncate_metrics(state.metrics_lines)
    return state
