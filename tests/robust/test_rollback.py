"""Rollback restores weights and the full optimizer state: continuing from it retraces the same path."""

from __future__ import annotations

import pytest
import torch

from optbench.optim import build_optimizer
from optbench.rollback import Rollback


def _loss(w):
    return ((w - torch.arange(4.0)) ** 2 * torch.tensor([1.0, 10.0, 100.0, 0.1])).sum()


def _trajectory(name, n_steps, rollback_at=None):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(4))
    opt = build_optimizer(name, [w], 0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t)) if name != "schedulefree" else None
    rb = Rollback([w], opt, sched)
    step, path = 0, []
    while step < n_steps:
        rb.before_step(step)
        opt.zero_grad()
        _loss(w).backward()
        opt.step()
        if sched:
            sched.step()
        step += 1
        if step == rollback_at:
            rollback_at = None
            rb.before_step(step)
            step = rb.restore_last_good()  # back to the state before the previous step
            continue
        path.append((step, w.detach().clone()))
    return path


@pytest.mark.parametrize("name", ["adamw", "sgd", "schedulefree", "radam"])
def test_restore_then_continue_retraces_the_uninterrupted_path(name):
    straight = dict(_trajectory(name, 6))
    rolled = dict(_trajectory(name, 6, rollback_at=4))
    for step, w in rolled.items():
        assert torch.equal(w, straight[step]), (name, step)
    assert set(rolled) == set(straight)
