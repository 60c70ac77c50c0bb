"""L-BFGS refinement after first-order training: full-batch steps on a seeded subset of the training set."""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from optbench.loss import compute_loss
from optbench.optim import build_optimizer


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN payloads included, unlike `torch.equal`)."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(
        a.detach().contiguous().view(-1).view(torch.uint8), b.detach().contiguous().view(-1).view(torch.uint8))


class _Memo:
    """The full-batch closure, evaluated once per point: a call at weights bitwise equal to those of an
    earlier evaluation puts back that evaluation's gradients and returns its loss.

    torch's L-BFGS evaluates the closure at the start of every `step()`, at the very weights where the
    previous step's line search already evaluated it (its accepted point is re-applied as x + t d, the same
    floating-point operation), and the refinement's final loss is one more such evaluation: each was a
    whole forward and backward pass over the refinement set. The closure is a deterministic function of
    the weights (the batches are fixed), so a remembered result is the result a new evaluation gives.
    Evaluations are kept for the current and the previous `step()` (`next_step`).
    """

    def __init__(self, params: list[torch.Tensor], closure):
        self.params, self.closure = params, closure
        self.previous: list[tuple] = []
        self.current: list[tuple] = []
        self.evaluations = 0  # closures actually evaluated

    def next_step(self) -> None:
        self.previous, self.current = self.current, []

    def __call__(self) -> torch.Tensor:
        for weights, grads, loss in (*reversed(self.current), *reversed(self.previous)):
            if all(_same_bits(p, w) for p, w in zip(self.params, weights)):
                for p, g in zip(self.params, grads):
                    p.grad = None if g is None else g.clone()
                return loss.clone()
        loss = self.closure()
        self.evaluations += 1
        self.current.append(([p.detach().clone() for p in self.params],
                             [None if p.grad is None else p.grad.detach().clone() for p in self.params], loss.clone()))
        return loss


def refine(loop) -> dict:
    """Refine the weights of a `TrainingLoop` with L-BFGS; its optimizer becomes the L-BFGS one (saved
    in the `refined` checkpoint). A diverging refinement restores the weights it started from."""
    cfg, params = loop.config, loop.params
    n = min(cfg.refine_structures, len(loop.train_set))
    idx = sorted(np.random.default_rng([cfg.seed, 104729]).permutation(len(loop.train_set))[:n].tolist())
    chunks = [idx[i : i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
    batches = [loop.train_set.batch(c) for c in chunks]
    loop.optimizer = optimizer = build_optimizer("lbfgs", params, 1.0)
    before = [p.detach().clone() for p in params]

    def full_batch():
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for b, c in zip(batches, chunks):
            loss, _ = compute_loss(loop.backbone, b, cfg.loss_weights, loop.huber_delta)  # the run's loss, stage one weights
            (loss * len(c) / n).backward(inputs=params)
            total += float(loss) * len(c) / n
        return torch.tensor(total)

    closure = _Memo(params, full_batch)
    loop.backbone.model.train()
    losses = []
    for _ in tqdm(range(cfg.refine_steps), desc="L-BFGS refine", unit="step", disable=None, leave=False):
        closure.next_step()
        loss = float(optimizer.step(closure))
        losses.append(loss)
        if not math.isfinite(loss) or not all(torch.isfinite(p).all() for p in params):
            with torch.no_grad():
                for p, s in zip(params, before):
                    p.copy_(s)
            return {"status": "diverged", "losses": losses, "n_structures": n}
    final_loss = float(closure())
    return {"status": "completed", "losses": [*losses, final_loss], "n_structures": n}
