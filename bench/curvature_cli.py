"""The curvature CLI with its defaults: wall time with P^1/2 H P^1/2's spectrum beside H's (the default
where a CPU is spare) and in one thread (`OPTBENCH_BESIDE=0`), and whether their numbers agree.

CHGNet fine-tuned for --steps AdamW steps on the shipped molecular suite, then `optbench curvature` on
its final checkpoint with the defaults (32 structures, k = 10: 30 Lanczos steps, 3 SLQ vectors, 10
Hutchinson probes, for H and for P^1/2 H P^1/2: about 200 Hessian-vector products), one thread each.
Issue 17's target is 60 s on one core; this prints what the command takes.

    python bench/curvature_cli.py [--n-structures 32] [--k 10] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from _common import process_wall

SUITE = Path(__file__).resolve().parents[1] / "optbench" / "suite" / "molecular"
NUMBERS = ("top_eigenvalues", "top_residuals", "bottom_eigenvalues", "trace_hutchinson", "trace_slq", "slq_nodes")


def _cli(args: list[str], env: dict) -> float:
    return process_wall([sys.executable, "-m", "optbench.cli", *args], env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-structures", type=int, default=32)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="optbench-curvature-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPTBENCH_CACHE": str(work / "cache")}
    _cli(["finetune", "--model", "chgnet", "--train", str(SUITE / "train.extxyz"), "--optimizer", "adamw", "--lr", "1e-3",
          "--max-steps", str(args.steps), "--batch-size", "4", "--out", str(work / "run")], env)
    print(f"optbench curvature, CHGNet after {args.steps} AdamW steps on the molecular suite, {args.n_structures} "
          f"structures, k = {args.k}, 1 thread, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f})")
    out = {}
    for tag, extra in (("one thread", {"OPTBENCH_BESIDE": "0"}), ("beside", {})):
        wall = _cli(["curvature", "--run", str(work / "run"), "--data", str(SUITE / "train.extxyz"), "--n-structures",
                     str(args.n_structures), "--k", str(args.k), "--out", str(work / tag.replace(" ", "_"))],
                    {**env, **extra})
        res = json.loads((work / tag.replace(" ", "_") / "curvature.json").read_text())
        out[tag] = res
        print(f"{tag:<11} process {wall:7.1f} s; H {res['hessian']['wall_time_s']:.1f} s, P^1/2 H P^1/2 "
              f"{res['preconditioned']['wall_time_s']:.1f} s, {res['seconds_per_hvp']:.2f} s per product "
              f"(P^1/2 H P^1/2 beside H: {res['preconditioned_beside']})")
        out[tag]["process_s"] = wall
    same = all(out["one thread"][b][f] == out["beside"][b][f] for b in ("hessian", "preconditioned") for f in NUMBERS)
    print(f"one thread / beside, wall: {out['one thread']['process_s'] / out['beside']['process_s']:.2f}; "
          f"numbers identical: {same}  (issue 17's target: <= 60 s on one core)")


if __name__ == "__main__":
    main()
