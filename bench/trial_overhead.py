"""A study trial's fixed overhead against the trial itself, measured in one run.

The trial is the one `study_scaling.py` runs (CHGNet on revMD17 ethanol, --n-train frames with a 10%
validation split, 32 test frames, AdamW, --steps steps, batch 4, one thread), run through the study's
`run_trial` with the graph cache already filled (what every trial after the first pays). Fixed
overhead, each part timed:

- a fresh worker process: Python start, the imports a trial needs (torch, optbench.run, chgnet with
  pymatgen) and the first model load, in a spawned process (paid once per worker: the process
  executor keeps its workers for the whole study), and the same for a study's worker, forked from
  the server that imported them once (`optbench.study.executors.worker_pool`);
- per trial: reading and checking the files with the model load (`phases_s.read`), the cached
  featurization (`featurize`) and the optimizer set-up (`setup`).

Prints each part and its share of the trial's wall time. Target (issue 17): <= 5%.

    python bench/trial_overhead.py [--steps 300] [--n-train 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import shared_data

warnings.filterwarnings("ignore")

_WORKER = ("import time; t0 = time.perf_counter(); import torch, optbench.run.finetune, optbench.study.executors; "
           "from optbench.backbones import load_backbone; t1 = time.perf_counter(); load_backbone('chgnet'); "
           "print(t1 - t0, time.perf_counter() - t1)")


def _load_chgnet() -> None:
    from optbench.backbones import load_backbone

    load_backbone("chgnet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--n-train", type=int, default=64)
    args = ap.parse_args()
    from ase.io import read, write

    from optbench.study.executors import run_trial

    src = shared_data() / "ethanol_revmd17"
    work = Path(tempfile.mkdtemp(prefix="optbench-trial-overhead-"))
    os.environ["OPTBENCH_CACHE"] = str(work / "cache")
    write(work / "train.xyz", read(src / "train.xyz", index=f":{args.n_train}"), format="extxyz")
    write(work / "id.xyz", read(src / "test_MD.xyz", index=":32"), format="extxyz")

    def config(steps: int, name: str) -> dict:
        return {"model": "chgnet", "train": str(work / "train.xyz"), "tests": {"id": str(work / "id.xyz")},
                "optimizer": "adamw", "lr": 1e-3, "batch_size": 4, "max_steps": steps, "seed": 0,
                "out": str(work / name)}

    run_trial(config(1, "fill_cache"), 1)  # featurizes the files once (a study's first trial)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    t_process = time.perf_counter() - t0
    t_imports, t_load = map(float, proc.stdout.split()[-2:])
    from optbench.study.executors import start_workers, worker_pool

    start_workers()  # as a study does, beside its checks
    with worker_pool(1) as pool:
        pool.submit(time.sleep, 0).result()  # the server has preloaded
    t0 = time.perf_counter()
    with worker_pool(1) as pool:
        pool.submit(_load_chgnet).result()
    t_forked = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_trial(config(args.steps, "trial"), 1)
    t_trial = time.perf_counter() - t0
    ph = result["phases_s"]
    per_trial = ph["read"] + ph["featurize"] + ph["setup"]
    print(f"CHGNet trial, {args.n_train} ethanol frames, {args.steps} steps, 1 thread, graph cache filled, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  trial wall time            : {t_trial:7.2f} s  (phases_s: "
          + ", ".join(f"{k} {v:.2f}" for k, v in ph.items()) + ")")
    print(f"  fresh worker process       : {t_process:7.2f} s  (torch and optbench imports {t_imports:.2f} s, "
          f"first model load with its chgnet/pymatgen imports {t_load:.2f} s): {100 * t_process / t_trial:.1f}% "
          "of the trial, paid once per worker")
    print(f"  a study's worker (forked from the server that preloaded them) to its model loaded: {t_forked:.2f} s = "
          f"{100 * t_forked / t_trial:.1f}% of the trial")
    print(f"  per trial (read + model load, cached featurization, set-up): {per_trial:.2f} s = "
          f"{100 * per_trial / t_trial:.1f}% of the trial  (target <= 5%)")


if __name__ == "__main__":
    main()
