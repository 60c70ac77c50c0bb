"""End-to-end run: wall time of a whole `optbench finetune` process over its optimisation time.

revMD17 ethanol (CHGNet, AdamW, lr 1e-3, batch 4): --n-train training frames (10% of them the
validation split), the first --n-test frames of test_MD as the test set, --steps steps. The
process runs three times: `cold, serial` (an empty cache, the zero-shot evaluation before the
training), `cold` (an empty cache: it featurizes every file; the zero-shot evaluation beside the
training on the spare CPU, the default on 2 CPUs at 1 thread) and `warm` (the cache of `cold`: what
every later run on the same files pays, e.g. the other trials of a study).
Optimisation time = `phases_s.train` of results.json (the training loop, with its validations
and checkpoints), plus `phases_s.refine` with `--refine-steps N` (an L-BFGS refinement of N steps; the
final evaluation then runs beside it where a CPU is spare). Prints the phases (s) of each run and
wall / optimisation.
Target (issue 17): wall / optimisation <= 1.5 (1.96 before). `--loaded` runs every case beside one
CPU-bound process (issue 17's point 3: a run under load at most 2x its quiet wall time).

    python bench/run_overhead.py [--n-train 500] [--n-test 1000] [--steps 300] [--threads 1] [--loaded] [--refine-steps 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import process_wall, shared_data


def run(work: Path, tag: str, train: Path, test: Path, steps: int, threads: int, env: dict,
        refine_steps: int = 0) -> tuple[float, dict]:
    """(wall seconds of the whole process, phases_s of its results.json)."""
    out = work / f"run_{tag}"
    cmd = [sys.executable, "-m", "optbench.cli", "finetune", "--model", "chgnet", "--train", str(train),
           "--test", f"id={test}", "--optimizer", "adamw", "--lr", "1e-3", "--batch-size", "4",
           "--max-steps", str(steps), "--seed", "0", "--threads", str(threads), "--out", str(out), "--restart"]
    if refine_steps:
        cmd += ["--refine", "lbfgs", "--refine-steps", str(refine_steps)]
    wall = process_wall(cmd, env)
    from optbench.layout import RunDir

    return wall, RunDir(out).results()["phases_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = shared_data() / "ethanol_revmd17"
    ap.add_argument("--train", default=str(data / "train.xyz"))
    ap.add_argument("--test", default=str(data / "test_MD.xyz"))
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loaded", action="store_true",
                    help="run every case beside one CPU-bound process (a pure-Python spin loop)")
    ap.add_argument("--refine-steps", type=int, default=0, help="an L-BFGS refinement of this many steps (0: none)")
    args = ap.parse_args()
    from ase.io import read, write

    work = Path(tempfile.mkdtemp(prefix="optbench-overhead-"))
    train, test = work / "train.xyz", work / "test.xyz"
    write(train, read(args.train, index=f":{args.n_train}"), format="extxyz")
    write(test, read(args.test, index=f":{args.n_test}"), format="extxyz")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    print(f"finetune CHGNet, {args.n_train} training + {args.n_test} test frames, {args.steps} steps, "
          f"{args.refine_steps} L-BFGS refinement steps, {args.threads} thread(s), {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")
    # `cold, serial`: the zero-shot evaluation before the training (OPTBENCH_BESIDE=0), as on a machine
    # without a spare CPU; `cold` and `warm`: the default (beside the training where a CPU is spare)
    cases = (("cold, serial", {"OPTBENCH_CACHE": str(work / "cache-serial"), "OPTBENCH_BESIDE": "0"}),
             ("cold", {"OPTBENCH_CACHE": str(work / "cache")}), ("warm", {"OPTBENCH_CACHE": str(work / "cache")}))
    train_s = {}
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.loaded else None
    try:
        for tag, extra in cases:
            wall, phases = run(work, tag.replace(", ", "_"), train, test, args.steps, args.threads, {**env, **extra},
                               args.refine_steps)
            train_s[tag] = phases["train"]
            optimisation = phases["train"] + phases.get("refine", 0.0)
            parts = "  ".join(f"{k} {v:.1f}" for k, v in phases.items())
            print(f"{tag}{' (loaded)' if args.loaded else ''}: process {wall:.1f} s; phases_s: {parts}")
            print(f"{tag}: wall / optimisation = {wall / optimisation:.2f}  (target <= 1.5)")
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    print(f"optimisation time with the zero-shot evaluation beside it / without: "
          f"{train_s['cold'] / train_s['cold, serial']:.2f}")


if __name__ == "__main__":
    main()
