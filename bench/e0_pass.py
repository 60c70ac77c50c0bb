"""The E0 refit's prediction pass: energies alone (`evaluate.predict_energies`, the forward without the
force backward) against the full prediction it used before (`predict_set`), on the same frames, and
whether the energies agree bit for bit.

    python bench/e0_pass.py [--n 500] [--model chgnet] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _common import best_of, shared_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data() / "ethanol_revmd17" / "train.xyz"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--model", default="chgnet")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from optbench.backbones import load_backbone
    from optbench.batch import FeaturizedSet
    from optbench.data.io import LabelKeys, read_frames
    from optbench.evaluate import _predict_energies, _predict_set  # the uncached computations

    backbone = load_backbone(args.model)
    fset = FeaturizedSet(read_frames(args.data, LabelKeys())[: args.n], backbone, "e0")
    full = best_of(lambda: _predict_set(backbone, fset, args.batch_size), args.repeats)
    alone = best_of(lambda: _predict_energies(backbone, fset, args.batch_size), args.repeats)
    same = np.array_equal(_predict_set(backbone, fset, args.batch_size)["energy"],
                          _predict_energies(backbone, fset, args.batch_size)["energy"])
    print(f"{args.model}, {len(fset)} frames, batch {args.batch_size}, {args.threads} thread(s), best of {args.repeats}")
    print(f"energies, forces (before): {full:.2f} s; energies alone: {alone:.2f} s; ratio {full / alone:.2f}; "
          f"energies identical: {same}")


if __name__ == "__main__":
    main()
