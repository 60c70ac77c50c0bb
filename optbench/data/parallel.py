"""Reference calculations in parallel processes (labels, convergence records, reference properties)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_thread_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` spawned processes with one thread each (they inherit the environment at start)."""
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    os.environ.update({var: "1" for var in _THREAD_VARS})
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def parallel_map(func, arglists: list[tuple], workers: int, desc: str) -> list:
    """[func(*args) for args in arglists] in `workers` one-thread processes, results in order."""
    with one_thread_pool(workers) as pool:
        futures = [pool.submit(func, *args) for args in arglists]
        return [f.result() for f in tqdm(futures, desc=desc, leave=False)]
