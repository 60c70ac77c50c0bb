"""The last good training state, kept so that a diverging run ends on finite weights.

The loss of step k is computed at the weights that step k-1 produced, so when it is bad
those weights are bad too: the state to restore is the one *before* step k-1, whose loss was
finite and below the threshold. A state is everything that moves: the trainable weights,
the full optimizer state (moments, ScheduleFree's z, L-BFGS history) and its per-group
hyperparameters, the LR scheduler and the EMA shadow. Snapshots reuse their buffers, so a
step pays one memory copy of the state, not an allocation.
"""

from __future__ import annotations

import copy

import torch


class _Snapshot:
    """Tensors of one training state (copied into reused buffers) plus its small Python values."""

    def __init__(self):
        self.layout: list = []  # (param index, state key) of every tensor after the params
        self.tensors: list[torch.Tensor] = []
        self.scalars: dict = {}
        self.groups: list[dict] = []
        self.scheduler = None
        self.step = 0

    def fill(self, rb: Rollback, step: int) -> None:
        layout, sources, scalars = [], list(rb.params), {}
        for i, p in enumerate(rb.params):
            for key, value in rb.optimizer.state.get(p, {}).items():
                if torch.is_tensor(value):
                    layout.append((i, key))
                    sources.append(value)
                else:
                    scalars[(i, key)] = copy.deepcopy(value)
        if rb.ema is not None:
            sources.extend(rb.ema.shadow)
        same = layout == self.layout and len(sources) == len(self.tensors) and all(
            a.shape == b.shape and a.dtype == b.dtype for a, b in zip(sources, self.tensors))
        if same:
            torch._foreach_copy_(self.tensors, [s.detach() for s in sources])
        else:
            self.tensors = [s.detach().clone() for s in sources]
        self.layout, self.scalars, self.step = layout, scalars, step
        self.groups = [copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in rb.optimizer.param_groups]
        self.scheduler = copy.deepcopy(rb.scheduler.state_dict()) if rb.scheduler else None

    @torch.no_grad()
    def restore(self, rb: Rollback) -> int:
        n = len(rb.params)
        for p, v in zip(rb.params, self.tensors[:n]):
            p.copy_(v)
        rb.optimizer.state.clear()
        for (i, key), v in zip(self.layout, self.tensors[n : n + len(self.layout)]):
            rb.optimizer.state[rb.params[i]][key] = v.clone()
        for (i, key), v in self.scalars.items():
            rb.optimizer.state[rb.params[i]][key] = copy.deepcopy(v)
        for group, saved in zip(rb.optimizer.param_groups, self.groups):
            group.update(copy.deepcopy(saved))
        if rb.scheduler and self.scheduler is not None:
            rb.scheduler.load_state_dict(self.scheduler)
        if rb.ema is not None:
            for s, v in zip(rb.ema.shadow, self.tensors[n + len(self.layout) :]):
                s.copy_(v)
        return self.step


class Rollback:
    """Two snapshots: the state before the previous step and before the current one."""

    def __init__(self, params, optimizer, scheduler=None, ema=None):
        self.params, self.optimizer, self.scheduler, self.ema = list(params), optimizer, scheduler, ema
        self.previous: _Snapshot | None = None
        self.current: _Snapshot | None = None

    def before_step(self, step: int) -> None:
        """Record the state at `step` updates, about to take the next one."""
        spare = self.previous or _Snapshot()
        self.previous = self.current
        spare.fill(self, step)
        self.current = spare

    def restore_last_good(self) -> int:
        """Restore the state before the previous step (the last one whose loss was good); returns its step."""
        snap = self.previous if self.previous is not None else self.current
        return snap.restore(self)
