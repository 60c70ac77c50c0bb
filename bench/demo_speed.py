"""The quick study (`make demo`) before and after issue 17's whole-run work, side by side in one run.

`before`: the study as `optbench run` ran it: trials and analyses one after the other in this process,
the L-BFGS refinement evaluating its closure at every call. `now`: what `make demo` runs on a machine
with 2 CPUs (`--executor process --workers 2`: trials, then analyses, two at a time in worker
processes, one thread each) with the refinement's closure evaluated once per point. The results.csv
of both must be identical but for wall-time columns (the script stops otherwise).

By default a reduced quick study (the quick preset with --optimizers, 2 of its 7) so that both runs fit
in minutes; --optimizers all runs the whole preset (14 trials) twice.

    python bench/demo_speed.py [--optimizers adamw,schedulefree] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return [{k: v for k, v in r.items() if "wall_time" not in k and "seconds" not in k}
                for r in csv.DictReader(fh)]


class _EveryCall:
    """The refinement's closure as it was before: evaluated at every call."""

    def __init__(self, params, closure):
        self.closure = closure

    def next_step(self):
        pass

    def __call__(self):
        return self.closure()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizers", default="adamw,schedulefree", help="comma-separated, or 'all' (the preset's 7)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from optbench.run import refine
    from optbench.study import StudyConfig, run_study
    from optbench.study.presets import preset

    data = preset("quick")
    if args.optimizers != "all":
        data["optimizers"] = {k: v for k, v in data["optimizers"].items() if k in args.optimizers.split(",")}
    study = StudyConfig.model_validate(data)
    work = Path(tempfile.mkdtemp(prefix="optbench-demo-"))
    times = {}
    memo = refine._Memo
    refine._Memo = _EveryCall  # the sequential run refines in this process
    t0 = time.perf_counter()
    run_study(study, work / "before")
    times["before"] = time.perf_counter() - t0
    refine._Memo = memo
    t0 = time.perf_counter()
    run_study(study, work / "now", executor="process", workers=args.workers)
    times["now"] = time.perf_counter() - t0
    same = _rows(work / "before" / "results.csv") == _rows(work / "now" / "results.csv")
    n = len(study.optimizers) * len(study.datasets)
    print(f"quick study, {n} trials ({', '.join(study.optimizers)} x {len(study.datasets)} regimes) with its "
          f"analyses and report, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"  before (sequential, every closure evaluated): {times['before']:7.1f} s")
    print(f"  now ({args.workers} process workers, closure once per point): {times['now']:7.1f} s")
    print(f"  results.csv identical but for wall times: {same}")
    print(f"  speed-up before / now = {times['before'] / times['now']:.2f}")
    if not same:
        raise SystemExit("results.csv differs")


if __name__ == "__main__":
    main()
