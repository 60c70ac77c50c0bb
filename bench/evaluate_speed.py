"""Evaluation throughput: `optbench evaluate` against CHGNet's batched `predict_structure` and
SevenNet's ASE calculator, on the same frames, same threads, each a whole fresh process.

Structures per second = frames / wall time of the process (imports, model load, reading,
featurization or the graph cache, forward, writing). optbench runs twice per backbone: once
with an empty graph cache (`cold`: it featurizes and writes the cache) and then with the cache
filled (`warm`: what the zero-shot, final and refined evaluations of a run and the trials of a
study pay after the first). Ours and theirs alternate, best of --repeats each.
Target (issue 17): ours (warm) / theirs >= 2.0 in structures per second, for each backbone.

    python bench/evaluate_speed.py [--n 1000] [--repeats 1] [--threads 1] [--backbones chgnet,sevennet] [--device cuda]

--device runs ours and the peers on that torch device (default cpu).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _common import process_wall, shared_data

# The peers, as a user of each library would write them (the same boxing of open molecules as optbench's).
CHGNET_PEER = """
import sys
from ase.io import read
from chgnet.model import CHGNet
from pymatgen.io.ase import AseAtomsAdaptor
from optbench.backbones.base import Backbone
model = CHGNet.load(use_device=sys.argv[3], verbose=False)
cut = float(model.graph_converter.atom_graph_cutoff)
structures = [AseAtomsAdaptor.get_structure(Backbone.as_periodic(a, cut)) for a in read(sys.argv[1], index=":")]
out = model.predict_structure(structures, task="ef", batch_size=int(sys.argv[2]))
assert len(out) == len(structures)
"""

SEVENNET_PEER = """
import sys
from ase.io import read
from sevenn.calculator import SevenNetCalculator
calc = SevenNetCalculator("7net-0", device=sys.argv[3])
frames = read(sys.argv[1], index=":")
for atoms in frames:
    atoms.calc = calc
    atoms.get_potential_energy(), atoms.get_forces()
"""

MODELS = {"chgnet": ("chgnet", CHGNET_PEER, "CHGNet predict_structure"),
          "sevennet": ("sevennet-0", SEVENNET_PEER, "SevenNet calculator")}


def _env(threads: int, cache: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "OPTBENCH_CACHE": str(cache)}


def _ours(model: str, data: Path, out: Path, batch: int, threads: int, env: dict, device: str = "cpu") -> float:
    return process_wall([sys.executable, "-m", "optbench.cli", "evaluate", "--model", model, "--test", f"md={data}",
                         "--batch-size", str(batch), "--threads", str(threads), "--device", device, "--out", str(out)],
                        env)


def bench(backbone: str, data: Path, n: int, work: Path, batch: int, threads: int, repeats: int,
          device: str = "cpu") -> dict:
    """Wall seconds of ours (cold cache, then best warm) and of the peer (best), whole processes."""
    model, peer, _ = MODELS[backbone]
    env = _env(threads, work / f"cache-{backbone}")
    cold = _ours(model, data, work / "cold.json", batch, threads, env, device)
    warm, theirs = [], []
    for _ in range(repeats):
        warm.append(_ours(model, data, work / "warm.json", batch, threads, env, device))
        theirs.append(process_wall([sys.executable, "-c", peer, str(data), str(batch), device], env))
    return {"n": n, "cold_s": cold, "warm_s": min(warm), "theirs_s": min(theirs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data() / "ethanol_revmd17" / "test_MD.xyz"))
    ap.add_argument("--n", type=int, default=1000, help="frames (the first n of --data)")
    ap.add_argument("--batch-size", type=int, default=16, help="structures per forward, ours and CHGNet's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--backbones", default="chgnet,sevennet")
    ap.add_argument("--device", default="cpu", help="torch device of ours and the peers (cpu, cuda)")
    args = ap.parse_args()
    from ase.io import read, write

    work = Path(tempfile.mkdtemp(prefix="optbench-evalspeed-"))
    data = work / "frames.xyz"
    write(data, read(args.data, index=f":{args.n}"), format="extxyz")
    print(f"{args.n} frames of {Path(args.data).name}, {args.threads} thread(s), batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), device {args.device}; "
          f"whole processes, best of {args.repeats}")
    print(f"{'':<34}{'wall (s)':>9}{'structures/s':>14}")
    for name in args.backbones.split(","):
        row = bench(name, data, args.n, work, args.batch_size, args.threads, args.repeats, args.device)
        for label, key in ((f"optbench evaluate {name}, cold", "cold_s"), (f"optbench evaluate {name}, warm", "warm_s"),
                           (MODELS[name][2], "theirs_s")):
            print(f"{label:<34}{row[key]:>9.1f}{row['n'] / row[key]:>14.1f}")
        print(f"ratio ours/theirs, structures per second: warm {row['theirs_s'] / row['warm_s']:.2f}  "
              f"cold {row['theirs_s'] / row['cold_s']:.2f}  (target: warm >= 2.0)")


if __name__ == "__main__":
    main()
