"""Where optbench's training step waits for the device: host-device synchronisations per step, by
source line, and how busy the GPU is during a step.

    python bench/step_sync.py [--n 200] [--batch-size 4] [--steps 20] [--device cuda] [--model chgnet]

Runs `TrainingLoop.step` (the step `optbench finetune` takes: featurized set, closure, clipping,
loss read-back) on --n frames of --data. On CUDA it counts the synchronising calls with
`torch.cuda.set_sync_debug_mode("warn")` (each is a warning at the Python line that caused it),
then profiles the same steps: kernel launches per step and the fraction of the step's wall time
the GPU spent in kernels (near 1: GPU-bound; small: the host, launching kernels, is the limit).
On the CPU it prints the step time only.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch


def main() -> None:
    from ase.io import read, write

    from optbench.config import FinetuneConfig
    from optbench.run import FinetuneRun

    from _common import shared_data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data() / "ethanol_revmd17" / "train.xyz"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", default="chgnet")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.xyz"
        write(train, read(args.data, index=f":{args.n}"), format="extxyz")
        cfg = FinetuneConfig(model=args.model, train=train, optimizer="adam", lr=1e-3, batch_size=args.batch_size,
                             max_steps=None, epochs=1, valid_fraction=0.0, out=Path(tmp) / "run", device=args.device,
                             loss_weights={"energy": 1, "forces": 10, "stress": 0})
        loop = FinetuneRun(cfg).prepare()
    loop.backbone.model.train()
    batches = list(loop.train_set.batches(args.batch_size))
    for b in batches[:5]:  # warm-up: allocator, lazy init, autotuning
        loop.step(b)
    steps = [batches[k % len(batches)] for k in range(args.steps)]

    times = []
    for b in steps:
        t0 = time.perf_counter()
        loop.step(b)  # ends with float(loss): the step's work is done when it returns
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    print(f"{args.model}, batch {args.batch_size}, device {args.device}, torch {torch.__version__}: "
          f"median step {1000 * step_s:.1f} ms over {len(steps)} steps")
    if not cuda:
        return

    where: collections.Counter = collections.Counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for b in steps:
                loop.step(b)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for w in caught:
        if "synchroniz" in str(w.message):
            where[f"{Path(w.filename).parent.name}/{Path(w.filename).name}:{w.lineno}"] += 1
    print(f"synchronisations per step: {sum(where.values()) / len(steps):.1f}")
    for loc, count in where.most_common():
        print(f"  {count / len(steps):5.1f}  {loc}")

    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for b in steps:
            loop.step(b)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    kernel_us = sum(getattr(e, "self_device_time_total", 0) for e in events
                    if str(getattr(e, "device_type", "")).endswith("CUDA"))
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    syncs = {e.key: e.count for e in events if "ynchronize" in e.key or e.key.startswith("cudaMemcpy")}
    print(f"profiled: {1000 * wall / len(steps):.1f} ms/step (profiler on), kernel launches/step "
          f"{launches / len(steps):.0f}, GPU busy in kernels {kernel_us / 1e6 / wall:.0%} of the wall time")
    print("  runtime calls over the profiled steps: " + ", ".join(f"{k} {v}" for k, v in sorted(syncs.items())))


if __name__ == "__main__":
    main()
