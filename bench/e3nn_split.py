"""e3nn's column slices from one split (`optbench.backbones.e3nn_split`) against e3nn's code as it comes,
in one process on the same frames: the evaluation pass (energies and forces) and a training step's
forward and backward (a force loss: double backward), alternating rounds, best of --repeats, and
whether the two give the same numbers bit for bit.

    python bench/e3nn_split.py [--n 200] [--model sevennet-0] [--batch-size 16] [--repeats 3] [--threads 1]

--model takes any e3nn-based backbone spec (`sevennet-0`, `mace:PATH`).
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import shared_data


def _plain(spec: str):
    """The backbone with e3nn's generated code as it comes (the adapter's rewrite switched off)."""
    import optbench.backbones.mace as mace
    import optbench.backbones.sevennet as sevennet
    from optbench.backbones import load_backbone

    saved = sevennet.split_column_slices, mace.split_column_slices
    sevennet.split_column_slices = mace.split_column_slices = lambda model: 0
    try:
        return load_backbone(spec)
    finally:
        sevennet.split_column_slices, mace.split_column_slices = saved


def _passes(backbone, fset, batch_size: int) -> tuple[dict, dict]:
    """(seconds, numbers) of the evaluation pass and of a training step's forward + backward."""
    from optbench.loss import LossWeights, compute_loss

    backbone.model.eval()
    t0 = time.perf_counter()
    forces = [backbone.predict(b.graphs, create_graph=False).forces.detach() for b in fset.batches(batch_size)]
    t1 = time.perf_counter()
    backbone.model.train()
    params = [p for p in backbone.model.parameters() if p.requires_grad]
    loss, _ = compute_loss(backbone, fset.batch(range(min(batch_size, len(fset)))), LossWeights())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    t2 = time.perf_counter()
    backbone.model.eval()
    return {"evaluate": t1 - t0, "train_step": t2 - t1}, {"forces": torch.cat(forces), "grads": grads}


def _same(a: dict, b: dict) -> bool:
    return torch.equal(a["forces"], b["forces"]) and all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in zip(a["grads"], b["grads"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data() / "ethanol_revmd17" / "test_MD.xyz"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", default="sevennet-0")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from optbench.backbones import load_backbone
    from optbench.batch import FeaturizedSet
    from optbench.data.io import LabelKeys, read_frames

    frames = read_frames(args.data, LabelKeys())[: args.n]
    models = {"e3nn as it comes": _plain(args.model), "one split": load_backbone(args.model)}
    sets = {tag: FeaturizedSet(frames, bb, "bench")
            for tag, bb in models.items()}
    best = {tag: {"evaluate": float("inf"), "train_step": float("inf")} for tag in models}
    numbers = {}
    for _ in range(args.repeats):
        for tag, bb in models.items():
            seconds, numbers[tag] = _passes(bb, sets[tag], args.batch_size)
            best[tag] = {k: min(best[tag][k], v) for k, v in seconds.items()}
    plain, split = best.values()
    print(f"{args.model}, {len(frames)} frames, batch {args.batch_size}, {args.threads} thread(s), best of {args.repeats}")
    for tag, secs in best.items():
        print(f"  {tag:<17} evaluation {secs['evaluate']:6.2f} s   training step (forward + backward) {secs['train_step']:6.3f} s")
    print(f"  speed-up, evaluation {plain['evaluate'] / split['evaluate']:.2f}, training step "
          f"{plain['train_step'] / split['train_step']:.2f}; numbers identical: {_same(*numbers.values())}")


if __name__ == "__main__":
    main()
