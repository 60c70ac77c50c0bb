"""Shared helpers of the bench scripts: where the reference data lives, a best-of timer."""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("OPTBENCH_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def best_of(fn, repeats: int = 2) -> float:
    """Smallest wall time (s) of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
