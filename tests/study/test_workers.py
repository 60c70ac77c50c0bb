"""Study workers fork from a server that imported torch, optbench and CHGNet once; each takes the
environment of the moment its pool starts (the study's cache folder is set after the server)."""

from __future__ import annotations

import os
import sys

from optbench.study.executors import start_workers, worker_context, worker_pool


def test_workers_take_the_environment_of_the_moment_their_pool_starts(monkeypatch):
    start_workers()
    monkeypatch.setenv("OPTBENCH_WORKER_CHECK", "set after the fork server started")
    with worker_pool(2) as pool:
        seen = [pool.submit(os.getenv, "OPTBENCH_WORKER_CHECK").result() for _ in range(4)]
    assert seen == ["set after the fork server started"] * 4


def test_workers_start_with_the_preloaded_imports():
    if sys.platform.startswith("linux"):
        assert worker_context().get_start_method() == "forkserver"
    names = ("torch", "optbench.run", "chgnet.model.model")
    with worker_pool(1) as pool:  # a builtin as the job: the test module is not importable in a worker
        seen = pool.submit(eval, f"[name in __import__('sys').modules for name in {names!r}]").result()
    assert seen == [True, True, True]
