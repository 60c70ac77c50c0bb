"""Shared helpers of the bench scripts: where the reference data lives, a best-of timer."""

from __future__ import annotations

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
