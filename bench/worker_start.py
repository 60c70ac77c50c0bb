"""Start of a study worker: spawn against the fork server of `optbench.study.executors`, in one run.

A study's process pool (trials, then analyses) starts its workers fresh; each pays Python's start,
torch's, optbench's and CHGNet's imports and its first model load before its first job. This times,
for each start method, a fresh 2-worker pool from its creation to both workers holding a loaded
CHGNet (the first job of each), in alternating rounds. For the fork server the time of its own start
(its imports, paid once per study and run beside the study's checks) is printed apart.

    python bench/worker_start.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor


def _first_job(_: int) -> int:
    import os

    import torch

    torch.set_num_threads(1)
    from optbench.backbones import load_backbone

    load_backbone("chgnet")
    time.sleep(0.5)  # hold the worker so that the second job goes to the other one
    return os.getpid()


def _pool_start(ctx) -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        pids = set(pool.map(_first_job, range(2)))
    assert len(pids) == 2, pids
    return time.perf_counter() - t0 - 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from multiprocessing import forkserver

    from optbench.study.executors import worker_context

    t0 = time.perf_counter()
    fs = worker_context()
    forkserver.ensure_running()
    with ProcessPoolExecutor(max_workers=1, mp_context=fs) as pool:  # answers once the server has preloaded
        pool.submit(time.sleep, 0).result()
    server = time.perf_counter() - t0
    spawn = mp.get_context("spawn")
    times = {"spawn": [], "forkserver": []}
    for _ in range(args.rounds):
        times["spawn"].append(_pool_start(spawn))
        times["forkserver"].append(_pool_start(fs))
    print(f"fresh 2-worker pool to both workers' first model loaded, {args.rounds} alternating rounds")
    for name, ts in times.items():
        print(f"  {name:10s} median {statistics.median(ts):6.2f} s  ({', '.join(f'{t:.2f}' for t in ts)})")
    print(f"  fork server's start with its imports (once per study, beside its checks): {server:.2f} s")
    s, f = statistics.median(times["spawn"]), statistics.median(times["forkserver"])
    print(f"saved per pool: {s - f:.2f} s ({s / f:.1f}x faster)")


if __name__ == "__main__":
    main()
