"""Run trials sequentially, in a local process pool, or on Ray; each result written atomically.

A trial whose run folder already holds results.json is finished and skipped; a trial that
raises is recorded (crash.json, its traceback in error.txt) and the study goes on.

On Ray, a trial runs in a scratch folder of the node that runs it and its run folder comes back
to the driver through Ray (no shared disk is assumed); it asks Ray for `threads` CPUs and, when
its device is CUDA, for `gpus_per_trial` GPUs, so that Ray makes the GPU visible to it.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from optbench.io import write_json, write_text
from optbench.layout import RunDir

ERROR_TXT = RunDir.ERROR  # full traceback of a trial that crashed, beside crash.json
PRELOAD = "optbench.study.worker_preload"  # what the fork server imports once for every worker


def worker_context():
    """The multiprocessing context of trial and analysis workers: a fork server that has imported
    PRELOAD (started early by `start_workers`), where the platform has one; else spawn. A worker then
    starts its first job without Python's, torch's and CHGNet's imports. Either way a worker holds no
    state of this process: the same numbers as the local executor."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([PRELOAD])
    return ctx


def worker_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()):
    """A process pool of `workers` on `worker_context()`. Each worker first takes this process's
    environment as it is now (a fork server's children would have the server's, from its start:
    the study's cache folder, for one, is set after it), then runs `initializer(*initargs)`."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(), initializer=_init_worker,
                               initargs=(dict(os.environ), initializer, initargs))


def _init_worker(env: dict, initializer: Callable | None, initargs: tuple) -> None:
    import os

    os.environ.clear()
    os.environ.update(env)
    if initializer is not None:
        initializer(*initargs)


def start_workers() -> None:
    """Start the fork server now, so that its imports run while this process checks the study."""
    ctx = worker_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def run_trial_shipped(config_json: dict, threads: int | None = None) -> tuple[dict, bytes]:
    """Run one trial in a node-local scratch folder; (result, the run folder as a gzipped tar)."""
    scratch = Path(tempfile.mkdtemp(prefix="optbench-trial-"))
    try:
        result = run_trial({**config_json, "out": str(scratch / "run")}, threads)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(scratch / "run", arcname=".")
        return result, buf.getvalue()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def unpack_trial(blob: bytes, out: Path) -> None:
    """Write a shipped run folder to `out` atomically (a sibling temp folder, then a rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                tar.extractall(tmp, filter="data")
            else:  # older patch releases: refuse links and paths that leave the folder, then extract
                bad = [m.name for m in tar.getmembers() if m.issym() or m.islnk() or Path(m.name).is_absolute()
                       or ".." in Path(m.name).parts]
                if bad:
                    raise ValueError(f"unsafe entries in a shipped run folder: {bad[:3]}")
                tar.extractall(tmp)
        config = RunDir(tmp).config_path
        if config.is_file():  # the run was written in the worker's scratch folder: point its config here
            import yaml

            from optbench.io import write_yaml

            write_yaml(config, {**yaml.safe_load(config.read_text()), "out": str(out)})
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_trial(config_json: dict, threads: int | None = None) -> dict:
    """Run one fine-tuning trial in this process; a crash becomes a record, never an exception."""
    import torch

    from optbench.config import FinetuneConfig
    from optbench.run import finetune

    if threads:
        torch.set_num_threads(threads)
    cfg = FinetuneConfig.model_validate(config_json)
    t0 = time.perf_counter()
    try:
        result = finetune(cfg, beside=False)  # workers fill the CPUs; trials' training times are compared
    except Exception as err:  # recorded with its traceback (crash.json, error.txt), the study goes on
        record = {"status": "crashed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(),
                  "wall_time_s": time.perf_counter() - t0, "config_hash": cfg.hash(), "error_file": RunDir.ERROR}
        run = RunDir(cfg.out)
        write_text(run.error_path, record["traceback"])
        write_json(run.crash_path, record)
        return record
    run = RunDir(cfg.out)
    for stale in (run.crash_path, run.error_path):
        stale.unlink(missing_ok=True)
    return result


def finished(out: Path) -> dict | None:
    return RunDir(out).results()


def execute(configs: Sequence, executor: str = "local", workers: int = 1, threads: int | None = None,
            address: str | None = None, progress: Callable | None = None, gpus_per_trial: float = 1.0) -> list[dict]:
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
        from concurrent.futures import as_completed

        with worker_pool(workers) as pool:
            futures = {pool.submit(run_trial, payload[i], threads): i for i in todo}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
    elif executor == "ray":
        import ray

        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=None if address else workers * threads, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        remote = ray.remote(run_trial_shipped)
        refs = {}
        for i in todo:
            gpus = gpus_per_trial if str(configs[i].device).startswith("cuda") else 0
            refs[remote.options(num_cpus=threads, num_gpus=gpus).remote(payload[i], threads)] = i
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                result, blob = ray.get(ref)
                unpack_trial(blob, configs[i].out)
                results[i] = result
                bar.update(1)
        if started:
            ray.shutdown()
    else:
        from optbench.errors import InputError

        raise InputError(f"unknown executor '{executor}' (local, process, ray)", field="executor")
    bar.close()
    return results
