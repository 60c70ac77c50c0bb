"""Run trials sequentially, in a local process pool, or on Ray; each result written atomically.

A trial whose run folder already holds results.json is finished and skipped; a trial that
raises is recorded (crash.json) and the study goes on.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from optbench.io import read_json, write_json


def run_trial(config_json: dict, threads: int | None = None) -> dict:
    """Run one fine-tuning trial in this process; a crash becomes a record, never an exception."""
    import torch

    from optbench.config import FinetuneConfig
    from optbench.train import finetune

    if threads:
        torch.set_num_threads(threads)
    cfg = FinetuneConfig.model_validate(config_json)
    t0 = time.perf_counter()
    try:
        result = finetune(cfg)
    except Exception as err:  # recorded, the study goes on
        record = {"status": "crashed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(),
                  "wall_time_s": time.perf_counter() - t0, "config_hash": cfg.hash()}
        write_json(Path(cfg.out) / "crash.json", record)
        return record
    crash = Path(cfg.out) / "crash.json"
    if crash.exists():
        crash.unlink()
    return result


def finished(out: Path) -> dict | None:
    path = Path(out) / "results.json"
    return read_json(path) if path.exists() else None


def execute(configs: Sequence, executor: str = "local", workers: int = 1, threads: int | None = None,
            address: str | None = None, progress: Callable | None = None) -> list[dict]:
    """Results of every config (a FinetuneConfig each), in order; finished ones are read, not rerun."""
    results: list[dict | None] = [finished(c.out) for c in configs]
    todo = [i for i, r in enumerate(results) if r is None]
    threads = threads or 1  # the same on every executor, so every executor gives the same numbers
    payload = {i: configs[i].model_dump(mode="json") for i in todo}
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc="trials", unit="trial", disable=None)
    if executor == "local" or not todo:
        for i in todo:
            results[i] = run_trial(payload[i], threads)
            bar.update(1)
    elif executor == "process":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(run_trial, payload[i], threads): i for i in todo}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
    elif executor == "ray":
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        remote = ray.remote(num_cpus=1)(run_trial)
        refs = {remote.remote(payload[i], threads): i for i in todo}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                results[refs[ref]] = ray.get(ref)
                bar.update(1)
        if started:
            ray.shutdown()
    else:
        from optbench.errors import InputError

        raise InputError(f"unknown executor '{executor}' (local, process, ray)", field="executor")
    bar.close()
    return results
