"""What a finished run reports (RUN_DIR/results.json) and the validation loss that selects LRs."""

from __future__ import annotations

from optbench.config import FinetuneConfig
from optbench.loss import loss_from_metrics


def valid_loss(block: dict, config: FinetuneConfig) -> float:
    """The training loss (`optbench.loss.weighted_loss`) over the whole validation set."""
    return loss_from_metrics(block, config.loss_weights)


def record(config: FinetuneConfig, loop, state, zero: dict, metrics: dict, inputs: dict, coverage: dict,
           provenance: dict) -> dict:
    """results.json of a run before refinement (`metrics`, refinement and phases are added after)."""
    result = {
        "status": "diverged" if state.diverged else "completed",
        "optimizer": config.optimizer, "lr": config.lr, "seed": config.seed, "model": config.model,
        "steps": state.step, "total_steps": loop.total_steps, "epochs_completed": state.step / loop.steps_per_epoch,
        "stopped_early": state.stopped_early, "best_valid_step": state.best_step,
        "wall_time_s": state.elapsed_s, "config_hash": config.hash(), "e0": zero["e0"],
        "valid_loss": valid_loss(metrics["final"]["valid"], config) if "valid" in metrics["final"] else None,
        "strategy": config.strategy, "lr_factors": config.lr_factors,
        "trainable_parameters": sum(p.numel() for p in loop.params),
        "inputs": inputs, "label_coverage": coverage,
        "provenance": provenance,
    }
    if state.diverged:
        result["diverged_at_step"] = loop.diverged_at
    if loop.recipe:
        result["recipe"] = loop.recipe.record(loop.ema.decay if loop.ema else 0.0)
    return result
