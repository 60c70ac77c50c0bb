"""The last good training state, kept so that a diverging run ends on finite weights.

The loss of step k is computed at the weights that step k-1 produced, so when it is bad
those weights are bad too: the state to restore is the one *before* step k-1, whose loss was
finite and below the threshold. A state is everything that moves: the trainable weights,
the full optimizer state (moments, ScheduleFree's z and x, L-BFGS history), the LR scheduler
and the EMA shadow.
"""

from __future__ import annotations

import copy

import torch


class Rollback:
    """Two snapshots: the state before the previous step and before the current one."""

    def __init__(self, params, optimizer, scheduler=None, ema=None):
        self.params, self.optimizer, self.scheduler, self.ema = params, optimizer, scheduler, ema
        self.previous = None
        self.current = None
        self.previous_step = 0
        self.current_step = 0

    def capture(self) -> dict:
        return {
            "params": [p.detach().clone() for p in self.params],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()) if self.scheduler else None,
            "ema": [s.clone() for s in self.ema.shadow] if self.ema else None,
        }

    def before_step(self, step: int) -> None:
        """Record the state at `step` updates, about to take the next one."""
        self.previous, self.previous_step = self.current, self.current_step
        self.current, self.current_step = self.capture(), step

    @torch.no_grad()
    def restore_last_good(self) -> int:
        """Restore the state before the previous step (the last one whose loss was good); returns its step."""
        snap, step = (self.previous, self.previous_step) if self.previous is not None else (self.current, self.current_step)
        for p, v in zip(self.params, snap["params"]):
            p.copy_(v)
        self.optimizer.load_state_dict(snap["optimizer"])
        if self.scheduler and snap["scheduler"] is not None:
            self.scheduler.load_state_dict(snap["scheduler"])
        if self.ema and snap["ema"] is not None:
            for s, v in zip(self.ema.shadow, snap["ema"]):
                s.copy_(v)
        return step
