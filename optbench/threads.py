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
    run on (the zero-shot evaluation beside the training, P^1/2 H P^1/2's spectrum beside H's).
    OPTBENCH_BESIDE=0 says no, =1 yes, whatever the CPUs."""
    setting = os.environ.get("OPTBENCH_BESIDE", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    return available_cpus() >= 2 * max(threads, 1)


def beside_by_default(device) -> bool:
    """The default of work beside the main thread: on the CPU, where `room_beside` torch's thread count."""
    import torch

    return str(device) == "cpu" and room_beside(torch.get_num_threads())


class Beside:
    """`fn(*args)` in a thread, in a copy of the caller's context (its context variables: the prediction
    cache setting, closed-form derivatives); `result()` waits for it and raises what it raised.

    torch gives the same numbers in the thread as in the caller when the thread builds the autograd
    graphs it differentiates: a graph built in one thread and differentiated from another runs its
    backward in another node order (autograd's sequence numbers are per thread), off by rounding."""

    def __init__(self, fn, *args, name: str = "optbench-beside"):
        import contextvars
        import threading

        self.seconds: float | None = None  # the thread's wall time, once it has finished
        self._value, self._error = None, None
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run, fn, args),
                                        daemon=True, name=name)
        self._thread.start()

    def _run(self, fn, args) -> None:
        import time

        t0 = time.perf_counter()
        try:
            self._value = fn(*args)
        except BaseException as err:  # raised again in the thread that asks for the result
            self._error = err
        self.seconds = time.perf_counter() - t0

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def resident_bytes() -> int | None:
    """This process's resident memory (bytes; Linux /proc, else None)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def available_bytes() -> int | None:
    """Memory the machine can still give (MemAvailable, bytes; Linux /proc, else None)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
