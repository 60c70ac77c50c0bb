"""A training recipe that an optimizer entry brings with it (`OptimizerSpec.recipe`): MACE's.

`mace_recipe` is what `mace_run_train` does when fine-tuning, declared here once and applied by
the training loop (optbench.run.recipe): Adam with amsgrad (the entry's optimizer), the LR cut by
`lr_factor` when the validation loss has not improved for `scheduler_patience` validations
(ReduceLROnPlateau), an EMA of the weights that is evaluated and saved, and a second stage over the
last part of the budget with a lower LR and a higher energy weight ("stage two", formerly SWA).

Every default is mace-torch 0.3.16's (mace/tools/arg_parser.py, mace/tools/scripts_utils.py
`get_swa` and `LRScheduler`, mace/tools/train.py, mace/cli/run_train.py); the comments name the
option. A run's own `ema_decay`, when set, replaces the recipe's. Importing this module does not
import torch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optbench.errors import InputError

TERMS = ("energy", "forces", "stress")


class Recipe(BaseModel):
    """The recipe's settings; a run overrides them with `FinetuneConfig.recipe` (by these names).

    LRs in the optimizer's units; loss weights in optbench's units (energy (eV/atom)^-2, forces
    (eV/Å)^-2, stress GPa^-2); the plateau patience in validations (MACE validates every epoch,
    `eval_interval` 1, and steps the plateau scheduler once per epoch, so its epochs are validations).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    lr_factor: float = Field(0.8, gt=0, lt=1)  # --lr_factor 0.8: ReduceLROnPlateau's factor
    scheduler_patience: int = Field(50, ge=0)  # --scheduler_patience 50; torch's mode min, threshold 1e-4 rel
    ema_decay: float = Field(0.99, ge=0, lt=1)  # --ema_decay 0.99 (with --ema); 0: no EMA
    # torch_ema.ExponentialMovingAverage (MACE's EMA) warms up: decay_n = min(decay, (1 + n) / (10 + n))
    ema_warmup: bool = True
    stage_two: bool = True  # --swa / --stage_two (MACE: off unless asked; the recipe asks)
    # --start_swa / --start_stage_two in epochs; None: MACE's default max(1, max_num_epochs // 4 * 3)
    # applied to the step budget, max(1, total_steps // 4 * 3): the last quarter
    start_stage_two: int | None = Field(None, ge=1)
    # --swa_lr / --stage_two_lr, absolute (MACE sets it on every group, SWALR with anneal_epochs=1:
    # at once); None: stage_two_lr_factor x each group's starting LR
    stage_two_lr: float | None = Field(None, gt=0)
    stage_two_lr_factor: float = Field(0.1, gt=0)  # MACE's defaults swa_lr / lr = 1e-3 / 1e-2
    # --swa_energy_weight etc., absolute (optbench units); a term not named: its run weight x factor
    stage_two_weights: dict[str, float] = Field(default_factory=dict)
    # MACE's defaults stage two / stage one: energy 1000 / 1, forces 100 / 100, stress 10 / 1
    stage_two_factors: dict[str, float] = Field(default_factory=lambda: {"energy": 1000.0, "forces": 1.0, "stress": 10.0})

    @field_validator("stage_two_weights", "stage_two_factors")
    @classmethod
    def _terms(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(TERMS)
        if unknown:
            raise ValueError(f"unknown loss term(s) {sorted(unknown)}; use energy, forces, stress")
        if any(not v >= 0 for v in value.values()):
            raise ValueError(f"loss weights must be >= 0, got {value}")
        return value

    def stage_two_start(self, total_steps: int, steps_per_epoch: int) -> int | None:
        """The step after which stage two runs (steps start+1, ...), or None: no stage two (off, or a
        start at or past the budget, which MACE also skips)."""
        if not self.stage_two or total_steps < 2:
            return None
        if self.start_stage_two is None:
            return max(1, total_steps // 4 * 3)
        start = self.start_stage_two * steps_per_epoch
        return start if start < total_steps else None

    def stage_two_loss(self, weights: dict[str, float]) -> dict[str, float]:
        """Stage two's loss weights from the run's (`weights`, optbench units)."""
        return {t: self.stage_two_weights.get(t, weights[t] * self.stage_two_factors.get(t, 1.0)) for t in TERMS}


def recipe_for(optimizer: str, overrides: dict[str, Any] | None = None) -> Recipe | None:
    """The recipe of registry entry `optimizer` with a run's `overrides`; None when it has none.

    InputError (field `recipe...`) on an override that is unknown or out of range, or on overrides
    for an optimizer without a recipe.
    """
    from optbench.optim.spec import REGISTRY

    spec = REGISTRY.get(optimizer.lower())
    base = spec.recipe if spec is not None else None
    if base is None:
        if overrides:
            with_recipe = ", ".join(n for n, s in REGISTRY.items() if s.recipe is not None)
            raise InputError(f"optimizer '{optimizer}' has no recipe to set (optimizers with one: {with_recipe})",
                             field="recipe")
        return None
    try:
        return Recipe.model_validate({**base.model_dump(), **(overrides or {})})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(first["msg"].removeprefix("Value error, "), field=f"recipe.{where}") from None
