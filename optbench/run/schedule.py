"""Learning-rate schedules (a multiplier of the base LR per step) and the EMA of the weights."""

from __future__ import annotations

import math

import torch


def lr_lambda(schedule: str, warmup: int, total: int):
    """Multiplier of the base LR at step t for each schedule name."""
    total = max(total, 1)

    def f(t: int) -> float:
        if schedule in ("warmup", "warmup_cosine") and warmup > 0 and t < warmup:
            return (t + 1) / warmup
        if schedule in ("cosine", "warmup_cosine"):
            start = warmup if schedule == "warmup_cosine" else 0
            frac = min(max(t - start, 0) / max(total - start, 1), 1.0)
            return 0.5 * (1 + math.cos(math.pi * frac))
        return 1.0

    return f


def scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup: int, total: int):
    """The LambdaLR of `schedule` over `total` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(schedule, warmup, total))


class EMA:
    """Exponential moving average of the trainable weights.

    warmup: the n-th update uses min(decay, (1 + n) / (10 + n)), as torch_ema (MACE's EMA) does
    with its default use_num_updates=True; `updates` counts them (checkpointed).
    """

    def __init__(self, params: list[torch.nn.Parameter], decay: float, warmup: bool = False):
        self.params, self.decay, self.warmup = params, decay, warmup
        self.shadow = [p.detach().clone() for p in params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange model weights and EMA weights (call twice to restore)."""
        for p, s in zip(self.params, self.shadow):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)
