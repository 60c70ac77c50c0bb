"""Shared helpers of the bench scripts: where the reference data lives, a best-of timer, the wall time
of a whole process."""

from __future__ import annotations

import subprocess
import time

from optbench.data import shared_data_dir as shared_data  # noqa: F401  (re-exported to the scripts)


def best_of(fn, repeats: int = 2) -> float:
    """Smallest wall time (s) of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def process_wall(cmd: list[str], env: dict) -> float:
    """Wall seconds of one whole process `cmd` (its output captured; a failure raises)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0
