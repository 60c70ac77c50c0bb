"""L-BFGS refinement after first-order training: full-batch steps on a seeded subset of the training set."""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from optbench.loss import compute_loss
from optbench.optim import build_optimizer


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

    def closure():
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for b, c in zip(batches, chunks):
            loss, _ = compute_loss(loop.backbone, b, cfg.loss_weights)
            (loss * len(c) / n).backward(inputs=params)
            total += float(loss) * len(c) / n
        return torch.tensor(total)

    loop.backbone.model.train()
    losses = []
    for _ in tqdm(range(cfg.refine_steps), desc="L-BFGS refine", unit="step", disable=None, leave=False):
        loss = float(optimizer.step(closure))
        losses.append(loss)
        if not math.isfinite(loss) or not all(torch.isfinite(p).all() for p in params):
            with torch.no_grad():
                for p, s in zip(params, before):
                    p.copy_(s)
            return {"status": "diverged", "losses": losses, "n_structures": n}
    final_loss = float(closure())
    return {"status": "completed", "losses": [*losses, final_loss], "n_structures": n}
