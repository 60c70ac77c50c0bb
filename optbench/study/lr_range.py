"""LR range test: where each optimizer's useful learning rates lie, measured before a study's trials.

An exponential sweep of the LR over a few dozen steps on one fixed batch of the training set (E0
refit first, as a run does): the same structures every step, so the loss curve shows the
optimizer's progress and blow-up, not minibatch noise; lightly smoothed by a bias-corrected
moving average. `lr_steepest` is the LR where the
smoothed loss falls fastest per decade of LR (searched below the LR of its minimum); `lr_diverged`
the first LR where it exceeds `stop_factor` times its minimum (or turns non-finite). `lr_grid`
places a geometric grid (a factor `step` apart) around `lr_steepest`, kept below `lr_diverged / 3`.
Losses are the training loss (`optbench.loss.weighted_loss`); LRs in the optimizer's own units.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

LR_MIN, LR_MAX, STEPS = 1e-6, 10.0, 40


def lr_range_test(model: str, train: str | Path, optimizer: str, *, lr_min: float = LR_MIN, lr_max: float = LR_MAX,
                  steps: int = STEPS, batch_size: int = 4, seed: int = 0, loss_weights: dict | None = None,
                  optimizer_kwargs: dict[str, Any] | None = None, keys: dict[str, str] | None = None,
                  smoothing: float = 0.5, stop_factor: float = 4.0) -> dict:
    """Sweep the LR from `lr_min` to `lr_max` over `steps` steps; return the curve and its landmarks."""
    from optbench.backbones import load_backbone
    from optbench.data.io import LabelKeys, read_frames
    from optbench.e0 import fit_reference_energies
    from optbench.loss import FeaturizedSet, LossWeights, compute_loss
    from optbench.optim import build_optimizer

    torch.manual_seed(seed)
    weights = LossWeights(**(loss_weights or {}))
    label_keys = LabelKeys(**{k: v for k, v in (keys or {}).items() if k in ("energy", "forces", "stress", "virial")})
    backbone = load_backbone(model)
    fset = FeaturizedSet(read_frames(train, label_keys), backbone, "train")
    fit_reference_energies(backbone, fset)
    params = backbone.parameters()
    opt = build_optimizer(optimizer, params, lr_min, **(optimizer_kwargs or {}))
    backbone.model.train()
    pick = np.random.default_rng([seed, 4242]).permutation(len(fset))[:batch_size]
    batch = fset.batch(sorted(pick.tolist()))
    lrs, losses, smooth = [], [], []
    avg, diverged = 0.0, None
    for t in range(steps):
        lr = lr_min * (lr_max / lr_min) ** (t / max(steps - 1, 1))
        for g in opt.param_groups:
            g["lr"] = lr

        def closure():
            opt.zero_grad(set_to_none=True)
            loss, _ = compute_loss(backbone, batch, weights)
            loss.backward(inputs=params)
            torch.nn.utils.clip_grad_norm_(params, 10.0)  # the training loop's default clip
            return loss

        loss = float(opt.step(closure))
        if not math.isfinite(loss):
            diverged = lr
            break
        avg = smoothing * avg + (1 - smoothing) * loss
        lrs.append(lr)
        losses.append(loss)
        smooth.append(avg / (1 - smoothing ** (t + 1)))
        if smooth[-1] > stop_factor * min(smooth):
            diverged = lr
            break
    return {"optimizer": optimizer, "model": model, "train": str(train), "steps": len(lrs), "batch_size": batch_size,
            "seed": seed, "lr": lrs, "loss": losses, "smoothed_loss": smooth, **landmarks(lrs, smooth, diverged)}


def landmarks(lrs: list[float], smooth: list[float], diverged: float | None, min_drop: float = 0.1) -> dict:
    """lr_steepest (fastest fall of the smoothed loss per decade, below its minimum), lr_min_loss,
    lr_diverged; lr_steepest is None (with the reason) when the loss never falls by `min_drop`."""
    if len(lrs) < 3:
        return {"lr_steepest": None, "lr_min_loss": None, "lr_diverged": diverged,
                "reason": "fewer than 3 finite steps: the sweep diverged at once"}
    i_min = int(np.argmin(smooth))
    if smooth[i_min] > (1 - min_drop) * smooth[0]:
        return {"lr_steepest": None, "lr_min_loss": float(lrs[i_min]), "lr_diverged": diverged,
                "reason": f"the loss never fell by {100 * min_drop:.0f}% before it blew up"}
    slope = np.gradient(np.asarray(smooth), np.log10(lrs))  # loss per decade of LR
    i_steep = int(np.argmin(slope[: i_min + 1]))
    return {"lr_steepest": float(lrs[i_steep]), "lr_min_loss": float(lrs[i_min]), "lr_diverged": diverged,
            "steepest_slope_per_decade": float(slope[i_steep]), "reason": None}


def lr_grid(result: dict, n: int, step: float = math.sqrt(10)) -> list[float]:
    """`n` LRs a factor `step` apart around `lr_steepest` (as many above as below it, one more
    below when n is even), the largest kept below lr_diverged / 3; one significant digit. Without
    an lr_steepest the grid hangs down from lr_diverged / 3."""
    anchor = result.get("lr_steepest")
    if anchor is None and not result.get("lr_diverged"):
        raise ValueError(f"no LR range for {result.get('optimizer')}: {result.get('reason')}")
    top = math.inf if anchor is None else anchor * step ** ((n - 1) // 2)
    if result.get("lr_diverged"):
        top = min(top, result["lr_diverged"] / 3)
    return sorted({float(f"{top / step**i:.1g}") for i in range(n)}, reverse=True)
