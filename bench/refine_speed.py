"""L-BFGS refinement: wall time of `optbench.run.refine.refine` against the same refinement with every
closure evaluated (the code before issue 17's fix: each `LBFGS.step` and the final loss re-ran a full
forward and backward pass at weights already evaluated), measured side by side in one process.

The quick study's settings by default (CHGNet, the shipped molecular suite, batch 4, 60 AdamW steps
with the E0 refit, then 5 L-BFGS steps on the whole training split). Both variants start from the same
weights; the losses and the refined weights must be bitwise equal (the script stops otherwise). Prints
closures evaluated, times and the ratio old / new.

    python bench/refine_speed.py [--suite molecular] [--steps 5] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="molecular")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--structures", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=60, help="AdamW steps before the refinement")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    import torch

    from optbench.data.manifest import suite_path
    from optbench.run import refine as refine_mod
    from optbench.run.finetune import FinetuneRun

    folder = suite_path(args.suite)
    tmp = tempfile.mkdtemp(prefix="optbench-refine-")
    cfg = {"model": "chgnet", "train": str(folder / "train.extxyz"), "valid": str(folder / "valid.extxyz"),
           "tests": {}, "optimizer": "adamw", "lr": 1e-3, "batch_size": 4, "max_steps": args.train_steps, "refine": None,
           "refine_steps": args.steps, "refine_structures": args.structures, "out": tmp, "seed": 0}
    from optbench.config import FinetuneConfig

    class Trained(FinetuneRun):  # the run as a study trial makes it, up to the refinement
        def prepare(self):
            self.loop = super().prepare()
            return self.loop

    run = Trained(FinetuneConfig.validated(cfg))
    with run.folder.claimed():
        run.run()
    loop = run.loop
    start = [p.detach().clone() for p in loop.params]

    class EveryCall:
        """The closure as it was: evaluated at every call."""

        def __init__(self, params, closure):
            self.closure, self.evaluations = closure, 0

        def next_step(self):
            pass

        def __call__(self):
            self.evaluations += 1
            return self.closure()

    memo, counts = refine_mod._Memo, {}

    def counting(cls, label):
        class Counted(cls):
            def __init__(self, *a):
                super().__init__(*a)
                counts[label] = self

        return Counted

    def timed(cls, label):
        refine_mod._Memo = counting(cls, label)
        best, out = float("inf"), None
        for _ in range(args.repeats):
            with torch.no_grad():
                for p, s in zip(loop.params, start):
                    p.copy_(s)
            t0 = time.perf_counter()
            out = refine_mod.refine(loop)
            best = min(best, time.perf_counter() - t0)
        refine_mod._Memo = memo
        return best, out, [p.detach().clone() for p in loop.params]

    t_old, r_old, w_old = timed(EveryCall, "old")
    t_new, r_new, w_new = timed(memo, "new")
    same = r_old["losses"] == r_new["losses"] and all(torch.equal(a, b) for a, b in zip(w_old, w_new))
    print(f"L-BFGS refinement, CHGNet, {r_new['n_structures']} structures of the {args.suite} suite, batch 4, "
          f"{args.steps} steps, {torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"  every closure evaluated : {t_old:7.2f} s  ({counts['old'].evaluations} full-batch evaluations)")
    print(f"  evaluated once per point: {t_new:7.2f} s  ({counts['new'].evaluations} full-batch evaluations)")
    print(f"  losses and refined weights bitwise equal: {same}")
    print(f"  speed-up old / new = {t_old / t_new:.2f}")
    if not same:
        raise SystemExit("the refinement changed: losses or weights differ")


if __name__ == "__main__":
    main()
