"""Threads of a process: how many torch uses and how idle OpenMP threads wait.

Defaults that hold up on shared machines: half the CPUs this process may run on (at least
one), and OpenMP's PASSIVE wait policy, so that idle threads sleep instead of spinning against
other work. On 2 shared cores two spinning threads made a step up to 4x slower next to one other
CPU-bound process (bench/threads_under_load.py measures it). `--threads N` or OMP_NUM_THREADS
choose the count; OMP_WAIT_POLICY set by the user is kept.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """Half the available CPUs, at least one: leaves room for the rest of a shared machine."""
    return max(1, available_cpus() // 2)


def configure(threads: int | None = None) -> int:
    """Set the wait policy and the thread count of this process; returns the count.

    Order of precedence: `threads`, then OMP_NUM_THREADS, then `default_threads()`. Called before
    torch (or tblite) is imported, both take the count and the policy from the environment, which
    child processes inherit; when torch is already loaded its count is set directly.
    """
    import sys

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env = os.environ.get("OMP_NUM_THREADS", "")
    n = threads or (int(env) if env.isdigit() and int(env) > 0 else default_threads())
    os.environ["OMP_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def room_beside(threads: int) -> bool:
    """Whether a second job of `threads` threads fits beside this process's own on the CPUs it may
    run on (the zero-shot evaluation beside the training, optbench.run.zero_shot).
    OPTBENCH_BESIDE=0 says no, =1 yes, whatever the CPUs."""
    setting = os.environ.get("OPTBENCH_BESIDE", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    return available_cpus() >= 2 * max(threads, 1)
