"""The LR range tests behind `OptimizerSpec.lr_range` (optbench/optim/builtin.py), one line each.

`optbench.study.lr_range.lr_range_test` as the registry's docstring says: CHGNet, one fixed batch of
4 training structures of the built-in suite, LR swept from 1e-6 to 10 over 40 steps, seed 0, with
each optimizer's registry defaults. Prints per regime and optimizer (lr_steepest, lr_diverged) and the
smoothed loss start -> minimum, in the form the registry's comments keep, and writes the whole curves
to --out (JSON).

    OMP_NUM_THREADS=1 python bench/lr_ranges.py --regimes crystal liquid interface --out lr_ranges.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    from optbench.data import finetune_inputs, suite_path
    from optbench.optim import FIRST_ORDER
    from optbench.regimes import BUILTIN_REGIMES
    from optbench.study.lr_range import lr_range_test

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", nargs="+", default=list(BUILTIN_REGIMES), choices=BUILTIN_REGIMES)
    ap.add_argument("--optimizers", nargs="+", default=list(FIRST_ORDER))
    ap.add_argument("--out", default=None, help="JSON file for the whole curves")
    args = ap.parse_args()
    results = {}
    for regime in args.regimes:
        inputs = finetune_inputs(suite_path(regime))
        for opt in args.optimizers:
            t0 = time.perf_counter()
            r = lr_range_test("chgnet", inputs["train"], opt, keys={k: inputs[f"{k}_key"] for k in ("energy", "forces", "stress") if inputs.get(f"{k}_key")})
            sm = r["smoothed_loss"]
            print(f"{regime:10s} {opt:13s} steepest {r['lr_steepest']!s:>22s} diverged {r['lr_diverged']!s:>22s} "
                  f"loss {sm[0]:.3f} -> {min(sm):.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
            results[f"{regime}|{opt}"] = r
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh)


if __name__ == "__main__":
    main()
