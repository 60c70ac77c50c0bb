"""SevenNet row of the fine-tuning speed bench: one training epoch of optbench's loop vs SevenNet's own
`sevenn.train.trainer.Trainer`, same model, data, batches, optimizer and loss weights.

Prints seconds per epoch (wall and process CPU time) for both and the ratio ours / theirs (target <= 1.0).
Run: python bench/finetune_speed_sevennet.py [--structures 16] [--batch-size 4] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

LR = 1e-4
W_ENERGY, W_FORCES, W_STRESS_GPA = 1.0, 10.0, 0.1  # optbench's defaults; SevenNet's stress loss is in kbar


def make_data(n: int, seed: int = 0):
    """Rattled, strained 8-atom Si cells labelled by perturbed SevenNet-0 predictions (eV, eV/Å, eV/Å^3)."""
    from sevenn.calculator import SevenNetCalculator

    rng = np.random.default_rng(seed)
    calc = SevenNetCalculator("7net-0", device="cpu")
    out = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.set_cell(atoms.cell.array * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = calc
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
        atoms.calc = SinglePointCalculator(atoms, energy=e + 0.1 * len(atoms), forces=f * 0.9, stress=s * 0.9)
        out.append(atoms)
    return out


def ours(structures, batch_size: int, workdir: Path):
    """optbench's training loop (FinetuneRun: its featurized set, optimizer registry and step); one-epoch function."""
    from ase.io import write

    from optbench.config import FinetuneConfig
    from optbench.train import FinetuneRun

    write(workdir / "train.xyz", structures, format="extxyz")
    cfg = FinetuneConfig(model="sevennet-0", train=workdir / "train.xyz", out=workdir / "run", optimizer="adam", lr=LR,
                         batch_size=batch_size, valid_fraction=0.0, clip_grad=0.0, e0="keep",
                         loss_weights={"energy": W_ENERGY, "forces": W_FORCES, "stress": W_STRESS_GPA})
    run = FinetuneRun(cfg)
    run._prepare()

    def epoch():
        run.backbone.model.train()
        for batch in run.train.batches(batch_size):
            run._step(batch)

    return epoch


def theirs(structures, batch_size: int):
    """SevenNet's Trainer.run_one_epoch on its own AtomGraphData and torch_geometric DataLoader."""
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph
    from sevenn.train.loss import ForceLoss, PerAtomEnergyLoss, StressLoss
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint
    from torch_geometric.loader import DataLoader

    cp = load_checkpoint("7net-0")
    model = cp.build_model()
    cutoff = cp.config["cutoff"]
    graphs = [AtomGraphData.from_numpy_dict(atoms_to_graph(a, cutoff, y_from_calc=True)) for a in structures]
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=False)
    mse = torch.nn.MSELoss()
    losses = [(PerAtomEnergyLoss(criterion=mse), W_ENERGY), (ForceLoss(criterion=mse), W_FORCES),
              (StressLoss(criterion=mse), W_STRESS_GPA / 100.0)]  # kbar^2 = 100 GPa^2
    trainer = Trainer(model, losses, torch.optim.Adam, {"lr": LR}, device="cpu")

    def epoch():
        trainer.run_one_epoch(loader, is_train=True)

    return epoch


def _time(fn) -> tuple[float, float]:
    """Wall and process CPU seconds of one call (CPU time is steadier on a shared machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_sevennet(structures: int = 16, batch_size: int = 4, epochs: int = 3) -> dict:
    """Median seconds per epoch (after one warm-up epoch each) and the ratios ours / SevenNet's trainer."""
    torch.manual_seed(0)
    data = make_data(structures)
    with tempfile.TemporaryDirectory() as tmp:
        return _bench(data, batch_size, epochs, Path(tmp))


def _bench(data, batch_size: int, epochs: int, workdir: Path) -> dict:
    structures = len(data)
    run_ours, run_theirs = ours(data, batch_size, workdir), theirs(data, batch_size)
    run_ours(), run_theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(epochs):  # interleaved, so load changes on a shared machine hit both
        t_ours.append(_time(run_ours))
        t_theirs.append(_time(run_theirs))
    row = {"backbone": "sevennet-0", "structures": structures, "atoms": 8, "batch_size": batch_size, "epochs": epochs}
    for i, kind in enumerate(("wall", "cpu")):
        row[f"ours_{kind}_s"] = statistics.median(t[i] for t in t_ours)
        row[f"theirs_{kind}_s"] = statistics.median(t[i] for t in t_theirs)
        row[f"ratio_{kind}"] = row[f"ours_{kind}_s"] / row[f"theirs_{kind}_s"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier timings on a shared CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    row = bench_sevennet(args.structures, args.batch_size, args.epochs)
    print(f"sevennet-0  {row['structures']} x {row['atoms']} atoms, batch {row['batch_size']}, "
          f"median of {row['epochs']} epochs after warm-up (target ratio <= 1.0)")
    for kind in ("wall", "cpu"):
        print(f"  {kind:4s}: ours {row[f'ours_{kind}_s']:.2f} s/epoch, sevenn Trainer "
              f"{row[f'theirs_{kind}_s']:.2f} s/epoch, ratio {row[f'ratio_{kind}']:.2f}")


if __name__ == "__main__":
    main()
