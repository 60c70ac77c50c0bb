"""Speed-up of a study with 2 process workers over 1 (same trials, same threads per trial).

Runs a small real study (CHGNet on revMD17 ethanol, 6 optimizers, 1 LR, 1 seed) twice in fresh
folders: sequentially, then in a 2-worker process pool, and prints the wall-time ratio.
Target (issue 17) >= 1.9 on 2 cores.

    python bench/study_scaling.py [--steps 300] [--n-train 64]
"""

from __future__ import annotations

import argparse
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
        times = {}
        for label, executor, workers in (("1 worker", "local", 1), ("2 workers", "process", 2)):
            t0 = time.perf_counter()
            run_study(study, tmp / label.replace(" ", "_"), executor=executor, workers=workers, report=False)
            times[label] = time.perf_counter() - t0
    n = len(study.optimizers)
    print(f"study of {n} trials ({args.steps} steps, {args.n_train} ethanol frames), 1 thread per trial")
    for label, t in times.items():
        print(f"  {label:10s} {t:8.1f} s")
    print(f"speed-up 2 workers / 1 worker = {times['1 worker'] / times['2 workers']:.2f}  (target >= 1.9)")


if __name__ == "__main__":
    main()
