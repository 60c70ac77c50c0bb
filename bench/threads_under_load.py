"""Threads under load: wall time of optbench commands on a quiet machine and beside one other
CPU-bound process, with optbench's default threads (half the CPUs, OpenMP PASSIVE wait policy)
and with torch's own default (every CPU, OpenMP's default spin-then-sleep wait).

    python bench/threads_under_load.py [--steps 40] [--repeats 2]

Each case runs the real CLI in a fresh process on the shipped molecular suite (CHGNet):
`finetune` (optimisation time from results.json), `evaluate` (whole process) and `curvature`
(whole process, 8 structures, k=3; by default its P^1/2 H P^1/2 spectrum runs in a thread beside H's
where a CPU is spare, and a second row runs both in one thread, OPTBENCH_BESIDE=0). Prints
loaded/quiet per case. Target: <= 2.0 with the defaults.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import process_wall

SUITE = Path(__file__).resolve().parents[1] / "optbench" / "suite" / "molecular"


def _busy() -> subprocess.Popen:
    """One CPU-bound neighbour process (a pure-Python spin loop)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _env(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if mode == "torch default":
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
        env["OMP_WAIT_POLICY"] = ""  # present but empty: optbench keeps it, libgomp uses its own default
    return env


def _finetune(work: Path, steps: int, env: dict, tag: str) -> float:
    out = work / f"ft_{tag}"
    cmd = [sys.executable, "-m", "optbench.cli", "finetune", "--model", "chgnet", "--train", str(SUITE / "train.extxyz"),
           "--optimizer", "adamw", "--lr", "1e-3", "--max-steps", str(steps), "--batch-size", "4",
           "--eval-every", str(steps), "--out", str(out), "--restart"]
    process_wall(cmd, env)
    from optbench.layout import RunDir

    return RunDir(out).results()["wall_time_s"]


def _evaluate(work: Path, env: dict, tag: str) -> float:
    cmd = [sys.executable, "-m", "optbench.cli", "evaluate", "--model", "chgnet",
           "--test", f"id={SUITE / 'test_id.extxyz'}", "--test", f"ood={SUITE / 'ood_scan.extxyz'}",
           "--out", str(work / f"ev_{tag}.json")]
    return process_wall(cmd, env)


def _curvature(work: Path, run: Path, env: dict, tag: str) -> float:
    cmd = [sys.executable, "-m", "optbench.cli", "curvature", "--run", str(run), "--data", str(SUITE / "train.extxyz"),
           "--n-structures", "8", "--k", "3", "--out", str(work / f"cv_{tag}")]
    return process_wall(cmd, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="optbench-threads-"))
    print(f"{os.cpu_count()} CPUs; CHGNet on the shipped molecular suite; best of {args.repeats}")
    print(f"{'case':<36}{'quiet (s)':>10}{'loaded (s)':>11}{'ratio':>7}")
    for mode in ("optbench default", "torch default"):
        env = _env(mode)
        jobs = {
            f"finetune {args.steps} steps": lambda tag, env=env: _finetune(work, args.steps, env, tag),
            "evaluate 2 sets": lambda tag, env=env: _evaluate(work, env, tag),
            "curvature 8 structures, k=3": lambda tag, env=env: _curvature(work, work / "ft_seed", env, tag),
        }
        if mode == "optbench default":  # its P^1/2 H P^1/2 spectrum beside H's, and both in one thread
            jobs["curvature, OPTBENCH_BESIDE=0"] = lambda tag, env=env: _curvature(
                work, work / "ft_seed", {**env, "OPTBENCH_BESIDE": "0"}, tag)
        _finetune(work, 4, env, "seed")  # a run folder for curvature, and warm caches
        for name, job in jobs.items():
            quiet = min(job(f"q{i}") for i in range(args.repeats))
            neighbour = _busy()
            try:
                time.sleep(0.5)
                loaded = min(job(f"l{i}") for i in range(args.repeats))
            finally:
                neighbour.kill()
                neighbour.wait()
            print(f"{mode + ': ' + name:<36}{quiet:>10.2f}{loaded:>11.2f}{loaded / quiet:>7.2f}")


if __name__ == "__main__":
    main()
