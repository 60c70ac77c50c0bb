"""The optimizer's training recipe (`OptimizerSpec.recipe`, MACE's) as the loop applies it.

MACE (mace/tools/train.py) steps ReduceLROnPlateau once per epoch on the last validation loss of the
EMA weights until stage two starts; from then on the loss has the stage-two weights, every group's
LR is the stage-two LR (SWALR, anneal_epochs=1, sets it at once) and the plateau scheduler rests.
Here the plateau steps at each validation (every eval_every steps) on the validation loss, or,
without a validation split, on the mean training loss since the previous validation point; stage
two starts after step `start`. Its state is checkpointed with the loop's (last.pt).
"""

from __future__ import annotations

import torch

from optbench.loss import LossWeights
from optbench.optim.recipe import Recipe
from optbench.provenance import log


class RecipeRun:
    """The plateau scheduler, the stage-two switch and what they did, for one run."""

    def __init__(self, name: str, recipe: Recipe, optimizer: torch.optim.Optimizer, weights: LossWeights,
                 total_steps: int, steps_per_epoch: int, has_valid: bool):
        self.name, self.recipe, self.optimizer = name, recipe, optimizer
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=recipe.lr_factor, patience=recipe.scheduler_patience)
        self.start = recipe.stage_two_start(total_steps, steps_per_epoch)
        self.run_weights = weights
        self.two_weights = LossWeights(**recipe.stage_two_loss(weights.model_dump()))
        self.two_lrs = [recipe.stage_two_lr or recipe.stage_two_lr_factor * float(g["lr"]) for g in optimizer.param_groups]
        self.metric = "valid_loss" if has_valid else "train_loss"
        self.in_stage_two = False
        self.reductions: list[dict] = []  # {"step": after it, "lr": group 0's new LR}
        self.window = [0.0, 0]  # training loss sum and count since the last plateau step
        two = f"stage two after step {self.start}" if self.start is not None else "no stage two"
        log.info(f"{name}: LR x{recipe.lr_factor} when {self.metric} has not improved for {recipe.scheduler_patience + 1} "
                 f"validations (ReduceLROnPlateau, patience {recipe.scheduler_patience}); {two}")
        if not has_valid:
            log.info(f"{name}: no validation split, so ReduceLROnPlateau steps on the mean training loss "
                     "of each eval_every window")
        if recipe.stage_two and self.start is None:
            log.warning(f"{name}: stage two starts at or past the budget ({total_steps} steps): no stage two")

    @property
    def weights(self) -> LossWeights:
        """The loss weights of the current stage."""
        return self.two_weights if self.in_stage_two else self.run_weights

    def observe(self, loss: float) -> None:
        """A training step's loss (the plateau's fallback metric)."""
        self.window[0] += loss
        self.window[1] += 1

    def plateau_step(self, step: int, valid_loss: float | None) -> None:
        """One plateau step after `step` on `valid_loss` (None: the window's mean training loss)."""
        total, count = self.window
        self.window = [0.0, 0]
        if self.in_stage_two or (self.start is not None and step >= self.start):
            return
        value = valid_loss if valid_loss is not None else (total / count if count else None)
        if value is None:
            return
        before = [float(g["lr"]) for g in self.optimizer.param_groups]
        self.plateau.step(value)
        after = [float(g["lr"]) for g in self.optimizer.param_groups]
        if after != before:
            self.reductions.append({"step": step, "lr": after[0]})
            log.info(f"{self.name}: {self.metric} on a plateau after step {step}: LR {before[0]:.3g} -> {after[0]:.3g}")

    def switch(self, step: int) -> bool:
        """Start stage two when `step` is its start; True when it started now."""
        if self.in_stage_two or self.start is None or step != self.start:
            return False
        self.in_stage_two = True
        for group, lr in zip(self.optimizer.param_groups, self.two_lrs, strict=True):
            group["lr"] = lr
        log.info(f"{self.name}: stage two after step {step}: LR {self.two_lrs[0]:.3g}, loss weights "
                 + ", ".join(f"{k}={v:g}" for k, v in self.two_weights.model_dump().items()))
        return True

    def state_dict(self) -> dict:
        return {"plateau": self.plateau.state_dict(), "in_stage_two": self.in_stage_two,
                "reductions": [dict(r) for r in self.reductions], "window": list(self.window)}

    def load_state_dict(self, state: dict) -> None:
        self.plateau.load_state_dict(state["plateau"])
        self.in_stage_two = state["in_stage_two"]
        self.reductions = [dict(r) for r in state["reductions"]]
        self.window = list(state["window"])

    def record(self, ema_decay: float) -> dict:
        """results.json's `recipe`: the settings as run and what the plateau and stage two did."""
        r = self.recipe
        return {
            "name": self.name, "source": "mace-torch 0.3.16 defaults (mace/tools/arg_parser.py)",
            "plateau": {"factor": r.lr_factor, "patience_validations": r.scheduler_patience, "metric": self.metric,
                        "reductions": [dict(x) for x in self.reductions]},
            "ema": {"decay": ema_decay, "warmup": r.ema_warmup and ema_decay > 0},
            "stage_two": {"start_step": self.start, "started": self.in_stage_two, "lr": self.two_lrs[0],
                          "loss_weights": self.two_weights.model_dump()},
        }
