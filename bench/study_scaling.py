"""Speed-up of a study with 2 process workers over 1 (same trials, same threads per trial).

Runs a small real study (CHGNet on revMD17 ethanol, 6 optimizers, 1 LR, 1 seed) three times in fresh
folders: in this process (the local executor), in a 1-worker process pool and in a 2-worker one, and
prints the wall-time ratios with each trial's own wall time. 2 process workers against 1 is the
issue's measure (both pay a worker's start); against the local executor the ratio also holds that
start. Target (issue 17) >= 1.9 on 2 cores.

    python bench/study_scaling.py [--steps 300] [--n-train 64]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from ase.io import read, write

from _common import shared_data

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--n-train", type=int, default=64)
    parser.add_argument("--optimizers", default="adam,adamw,sgd,radam,lamb,schedulefree")
    parser.add_argument("--skip-local", action="store_true", help="time only the process pools (1 and 2 workers)")
    args = parser.parse_args()
    from optbench.study import StudyConfig, run_study

    src = shared_data() / "ethanol_revmd17"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write(tmp / "train.xyz", read(src / "train.xyz", index=f":{args.n_train}"), format="extxyz")
        write(tmp / "id.xyz", read(src / "test_MD.xyz", index=":32"), format="extxyz")
        study = StudyConfig.model_validate({
            "name": "scaling", "optimizers": {o: {"lrs": [1e-3]} for o in args.optimizers.split(",")},
            "datasets": [{"name": "ethanol", "train": str(tmp / "train.xyz"), "tests": {"id": str(tmp / "id.xyz")}}],
            "max_steps": args.steps, "refine": False, "curvature": None, "forgetting": False, "properties": False,
            "threads_per_trial": 1,
        })
        times, trials = {}, {}
        runs = [("1 worker", "local", 1), ("1 process worker", "process", 1), ("2 process workers", "process", 2)]
        for label, executor, workers in runs[args.skip_local:]:
            folder = tmp / label.replace(" ", "_")
            t0 = time.perf_counter()
            run_study(study, folder, executor=executor, workers=workers, report=False)
            times[label] = time.perf_counter() - t0
            trials[label] = [json.loads(p.read_text())["wall_time_s"] for p in sorted(folder.glob("trials/*/results.json"))]
    n = len(study.optimizers)
    print(f"study of {n} trials ({args.steps} steps, {args.n_train} ethanol frames), 1 thread per trial")
    for label, t in times.items():
        each = ", ".join(f"{w:.1f}" for w in trials[label])
        print(f"  {label:18s} {t:8.1f} s  (trials' own wall times, s: {each}; sum {sum(trials[label]):.1f})")
    two = times["2 process workers"]
    for label in ("1 process worker", "1 worker"):
        if label in times:
            print(f"speed-up 2 process workers / {label} = {times[label] / two:.2f}  (target >= 1.9)")


if __name__ == "__main__":
    main()
