"""Measured costs behind `optbench.study.cost` (the `--dry-run` estimate and the paper-cpu preset).

For each built-in regime: one study trial (CHGNet, AdamW at the quick preset's LR, batch 4, --steps
training steps, validation every --eval-every steps, --refine-steps L-BFGS steps on --refine-structures
structures, one thread), then each analysis of that trial as a study runs it, each timed: every
property the manifest has a reference for (on the fine-tuned model), the curvature at start, final and
refined (--n-structures, --k, --n-iter, --probes, --slq) and forgetting (probe set and the other
regimes' test structures). Prints one line per measurement and writes them all to --out (JSON). Times are CPU seconds of this process
(`time.perf_counter` is made `time.process_time`, so results.json's phases_s are CPU seconds too) beside
the wall time: on a shared machine the load stretches the wall times, not the work.

    OMP_NUM_THREADS=1 python bench/study_costs.py --out costs.json [--regimes crystal liquid]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def _args():
    from optbench.regimes import BUILTIN_REGIMES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", nargs="+", default=list(BUILTIN_REGIMES), choices=BUILTIN_REGIMES)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--refine-steps", type=int, default=3)
    ap.add_argument("--refine-structures", type=int, default=8)
    ap.add_argument("--n-structures", type=int, default=2)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--n-iter", type=int, default=6)
    ap.add_argument("--probes", type=int, default=1)
    ap.add_argument("--slq", type=int, default=1)
    ap.add_argument("--md-settings", default='{"equilibration_steps": 100, "equilibration_block_steps": 50, "nvt_steps": 200}',
                    help="JSON property settings for md and interface")
    ap.add_argument("--skip-properties", action="store_true")
    ap.add_argument("--trial-only", action="store_true", help="time the trial only, no analyses")
    ap.add_argument("--out", default=None)
    return ap.parse_args()


def _timed(label: str, fn, *a, **kw):
    """(result, (wall s, CPU s of this process)): on a shared machine the CPU time is what a core of
    its own would take (one torch thread), the wall time what the load left of it."""
    t0, c0 = time.time(), time.process_time()
    out = fn(*a, **kw)
    dt, cpu = time.time() - t0, time.process_time() - c0
    print(f"{label:55s} {dt:8.1f} s wall {cpu:8.1f} s CPU  (load {os.getloadavg()[0]:.1f})", flush=True)
    return out, (dt, cpu)


def main() -> None:
    # every phase of a run (results.json's phases_s) and the loop's elapsed_s in CPU seconds of this process:
    # on a shared machine the load stretches wall times, not the work
    time.perf_counter = time.process_time
    from optbench.regimes import BUILTIN_REGIMES
    from optbench.study.analyses import _curvature, _property, _property_jobs
    from optbench.study.config import CurvatureSpec, DatasetSpec, StudyConfig
    from optbench.study.executors import run_trial
    from optbench.study.presets import quick_lr
    from optbench.study.trials import expand, resolve_dataset

    args = _args()
    md = json.loads(args.md_settings)
    tmp = Path(tempfile.mkdtemp(prefix="optbench-costs-"))
    all_ds = {r: resolve_dataset(DatasetSpec(name=r, suite=r)) for r in BUILTIN_REGIMES}
    out: dict = {"settings": vars(args)}
    from optbench.forgetting import Forgetting

    forgetting = Forgetting({n: list(d.tests.values()) for n, d in all_ds.items()})
    for regime in args.regimes:
        settings = {"md": md, "interface": md}
        spec = DatasetSpec(name=regime, suite=regime, property_settings=settings)
        study = StudyConfig(datasets=[spec], optimizers={"adamw": {"lrs": [quick_lr("adamw")]}}, max_steps=args.steps,
                            eval_every=args.eval_every, refine_steps=args.refine_steps,
                            finetune={"refine_structures": args.refine_structures},
                            curvature=CurvatureSpec(checkpoints=["start", "final", "refined"], n_structures=args.n_structures,
                                                    k=args.k, n_iter=args.n_iter, n_probes=args.probes, n_slq=args.slq))
        ds = resolve_dataset(spec)
        trial = expand(study, tmp / regime, {regime: ds})[0]
        result, total = _timed(f"{regime}: trial", run_trial, trial.config.model_dump(mode="json"), 1)
        rec = {"trial_s": total[0], "trial_cpu_s": total[1], "steps": result["steps"], "phases_s": result["phases_s"],
               "train_s": result["phases_s"].get("train"), "refine_s": result["phases_s"].get("refine"),
               "n_train": result.get("n_train"), "analyses": {}}
        print(f"  phases {json.dumps({k: round(v, 1) for k, v in result['phases_s'].items()})}", flush=True)
        run = str(trial.config.out)
        if args.trial_only:  # and a second trial (seed 1), as every later trial of a study: graphs and zero-shot cached
            study1 = study.model_copy(update={"seeds": [1]})
            again, total = _timed(f"{regime}: trial, warm cache", run_trial, expand(study1, tmp / regime, {regime: ds})[0]
                                  .config.model_dump(mode="json"), 1)
            print(f"  phases {json.dumps({k: round(v, 1) for k, v in again['phases_s'].items()})}", flush=True)
            rec["warm"] = {"trial_s": total[0], "trial_cpu_s": total[1], "steps": again["steps"], "phases_s": again["phases_s"]}
            out[regime] = rec
            continue
        if not args.skip_properties:
            for struct, props in _property_jobs(ds):
                for prop in props:
                    _, dt = _timed(f"{regime}: {prop} {struct}", _property, prop, run, ds, struct, tmp / "p" / regime / struct)
                    rec["analyses"][f"property:{prop}:{struct}"] = dt
        for ck in study.curvature.checkpoints:
            res, dt = _timed(f"{regime}: curvature {ck}", _curvature, run, ck, ds, study, tmp / "c" / regime / ck)
            rec["analyses"][f"curvature:{ck}"] = dt
            rec["analyses"][f"curvature:{ck}:seconds_per_hvp"] = res.get("seconds_per_hvp")
        _timed(f"{regime}: forgetting (first, pretrained predictions)", forgetting.measure, run, "chgnet", regime)
        _, dt = _timed(f"{regime}: forgetting", forgetting.measure, run, "chgnet", regime)
        rec["analyses"]["forgetting"] = dt
        out[regime] = rec
        if args.out:
            Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
