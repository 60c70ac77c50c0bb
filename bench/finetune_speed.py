"""Time one training epoch of optbench against CHGNet's own Trainer and a bare loop.

Same data (revMD17 ethanol frames), batch size, optimizer (Adam, lr 1e-3) and loss weights
(energy 1, forces 10) for all three; prints seconds per epoch and the two ratios.
Targets: ours / CHGNet Trainer <= 0.8, ours / bare loop <= 1.10. A fourth row runs the bare loop
on optbench's exact rewrite of CHGNet's forward (project-then-gather, vectorised batching), which
is where the gain over the Trainer comes from; ours / that row is the overhead of optbench's loop.
SevenNet row: optbench on SevenNet-0 against SevenNet's own Trainer (rattled Si cells with
energy, forces and stress; loss weights 1, 10, 0.1 GPa^-2); target ours / SevenNet Trainer <= 1.0.

    python bench/finetune_speed.py [--n 200] [--batch-size 4] [--repeats 2] [--sevennet-n 16] [--device cuda]

--device runs every row on that device (default cpu); on CUDA each timed epoch ends with a device
synchronisation, so the times are the work done, not the work queued.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from ase.io import read, write

from _common import best_of, shared_data

warnings.filterwarnings("ignore")


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def ours_epoch_time(train: Path, batch_size: int, n: int, device: str = "cpu") -> float:
    """Seconds of one steady-state epoch of `optbench.finetune` (from its metrics log)."""
    from optbench.config import FinetuneConfig
    from optbench.layout import RunDir
    from optbench.run import finetune

    with tempfile.TemporaryDirectory() as tmp:
        cfg = FinetuneConfig(model="chgnet", train=train, optimizer="adam", lr=1e-3, batch_size=batch_size,
                             max_steps=None, epochs=3, valid_fraction=0.0, checkpoint_every=10**6,
                             loss_weights={"energy": 1, "forces": 10, "stress": 0}, out=Path(tmp) / "run", device=device)
        finetune(cfg)
        lines = RunDir(Path(tmp) / "run").metrics()
    steps = [x for x in lines if "loss" in x]
    per_epoch = int(np.ceil(n / batch_size))
    ends = [steps[k * per_epoch - 1]["elapsed_s"] for k in (1, 2, 3)]
    return min(ends[1] - ends[0], ends[2] - ends[1])


def chgnet_trainer_epoch_time(atoms_list, batch_size: int, repeats: int, device: str = "cpu") -> float:
    from chgnet.data.dataset import StructureData, collate_graphs
    from chgnet.model import CHGNet
    from chgnet.trainer import Trainer
    from pymatgen.io.ase import AseAtomsAdaptor
    from torch.utils.data import DataLoader

    model = CHGNet.load(verbose=False)
    structures = [AseAtomsAdaptor.get_structure(_boxed(a)) for a in atoms_list]
    e = np.array([a.get_potential_energy() / len(a) for a in atoms_list])
    data = StructureData(structures=structures, energies=list(e - e.mean()), forces=[a.get_forces() for a in atoms_list])
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate_graphs,
                        generator=torch.Generator().manual_seed(0))
    trainer = Trainer(model=model, targets="ef", optimizer="Adam", learning_rate=1e-3, epochs=1,
                      energy_loss_ratio=1, force_loss_ratio=10, print_freq=10**9, use_device=device)

    def epoch():
        trainer._train(loader, 0)
        _sync(device)

    return best_of(epoch, repeats)


def bare_epoch_time(atoms_list, batch_size: int, repeats: int, fast: bool = False, device: str = "cpu") -> float:
    """Pre-featurized graphs, model forward + MSE + backward + Adam step, nothing else.

    fast=False calls `CHGNet.forward`; fast=True calls optbench's exact rewrite of it
    (`optbench.backbones.chgnet_fast`), so ours / that loop is the cost of optbench's loop alone.
    """
    from chgnet.model import CHGNet
    from pymatgen.io.ase import AseAtomsAdaptor

    from optbench.backbones import chgnet_fast

    model = CHGNet.load(verbose=False).to(device)
    graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(_boxed(a))).to(device) for a in atoms_list]
    e = torch.tensor([a.get_potential_energy() / len(a) for a in atoms_list], dtype=torch.float32)
    e = (e - e.mean()).to(device)
    forces = [torch.tensor(a.get_forces(), dtype=torch.float32, device=device) for a in atoms_list]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = np.random.default_rng(0).permutation(len(graphs))

    def epoch():
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            batch = [graphs[i] for i in idx]
            if fast:
                pred = chgnet_fast.predict(model, batch)
                energy, f = pred.energy / pred.n_atoms, pred.forces
            else:
                pred = model(batch, task="ef")
                energy, f = pred["e"], torch.cat(pred["f"])
            loss = torch.mean((energy - e[idx]) ** 2) + 10 * torch.mean((f - torch.cat([forces[i] for i in idx])) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _sync(device)

    return best_of(epoch, repeats)


def sevennet_data(n: int, seed: int = 0) -> list:
    """Rattled, strained 8-atom Si cells labelled with perturbed SevenNet-0 energy, forces and stress."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator
    from sevenn.calculator import SevenNetCalculator

    rng = np.random.default_rng(seed)
    calc = SevenNetCalculator("7net-0", device="cpu")
    out = []
    for _ in range(n):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.set_cell(atoms.cell.array * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = calc
        e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=e + 0.1 * len(atoms), forces=0.9 * f, stress=0.9 * s)
        out.append(atoms)
    return out


def sevenn_trainer_epoch(atoms_list, batch_size: int, device: str = "cpu"):
    """One epoch of SevenNet's own Trainer.run_one_epoch: its AtomGraphData, torch_geometric DataLoader, Adam, MSE."""
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import atoms_to_graph
    from sevenn.train.loss import ForceLoss, PerAtomEnergyLoss, StressLoss
    from sevenn.train.trainer import Trainer
    from sevenn.util import load_checkpoint
    from torch_geometric.loader import DataLoader

    cp = load_checkpoint("7net-0")
    graphs = [AtomGraphData.from_numpy_dict(atoms_to_graph(a, cp.config["cutoff"], y_from_calc=True)) for a in atoms_list]
    loader = DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    mse = torch.nn.MSELoss()
    losses = [(PerAtomEnergyLoss(criterion=mse), 1.0), (ForceLoss(criterion=mse), 10.0),
              (StressLoss(criterion=mse), 0.1 / 100)]  # SevenNet's stress loss is in kbar: 0.1 GPa^-2
    trainer = Trainer(cp.build_model(), losses, torch.optim.Adam, {"lr": 1e-3}, device=device)

    def epoch():
        trainer.run_one_epoch(loader, is_train=True)
        _sync(device)

    return epoch


def optbench_epoch(train: Path, out: Path, batch_size: int, model: str, stress_weight: float, device: str = "cpu"):
    """One epoch of optbench's training step (`TrainingLoop.step`: featurized set, optimizer registry, closure, clipping)."""
    from optbench.config import FinetuneConfig
    from optbench.run import FinetuneRun

    cfg = FinetuneConfig(model=model, train=train, optimizer="adam", lr=1e-3, batch_size=batch_size, max_steps=None,
                         epochs=1, valid_fraction=0.0, loss_weights={"energy": 1, "forces": 10, "stress": stress_weight}, out=out,
                         device=device)
    loop = FinetuneRun(cfg).prepare()

    def epoch():
        loop.backbone.model.train()
        for batch in loop.train_set.batches(batch_size):
            loop.step(batch)
        _sync(device)

    return epoch


def bench_sevennet(n: int = 16, batch_size: int = 4, repeats: int = 2, device: str = "cpu") -> dict:
    """SevenNet row: best seconds per epoch of optbench and of SevenNet's Trainer, and their ratio.

    Epochs of the two alternate (2 * repeats each, after one warm-up each), so load changes on a
    shared machine hit both; the rest of optbench's loop costs about 10 ms a step (profiled).
    """
    atoms_list = sevennet_data(n)
    theirs_epoch = sevenn_trainer_epoch(atoms_list, batch_size, device)
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "si.xyz"
        write(train, atoms_list, format="extxyz")
        ours_epoch = optbench_epoch(train, Path(tmp) / "run", batch_size, "sevennet-0", 0.1, device)
        ours_epoch(), theirs_epoch()
        ours, theirs = [], []
        for _ in range(2 * repeats):
            ours.append(best_of(ours_epoch, 1))
            theirs.append(best_of(theirs_epoch, 1))
    return {"n": n, "batch_size": batch_size, "ours_s": min(ours), "theirs_s": min(theirs), "ratio": min(ours) / min(theirs)}


def _boxed(atoms):
    from optbench.backbones.base import Backbone

    out = Backbone.as_periodic(atoms, 6.0)
    out.calc = atoms.calc
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(shared_data() / "ethanol_revmd17" / "train.xyz"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sevennet-n", type=int, default=16, help="Si cells in the SevenNet row (0: skip it)")
    parser.add_argument("--device", default="cpu", help="torch device of every row (cpu, cuda)")
    args = parser.parse_args()
    atoms_list = read(args.data, index=f":{args.n}")
    print(f"epoch of {len(atoms_list)} frames of {Path(args.data).parent.name}, batch {args.batch_size}, Adam, "
          f"{torch.get_num_threads()} threads, device {args.device}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:  # each row printed when measured
        train = Path(tmp) / "train.xyz"
        write(train, atoms_list, format="extxyz")
        ours = ours_epoch_time(train, args.batch_size, len(atoms_list), args.device)
    print(f"  optbench          {ours:8.2f} s", flush=True)
    theirs = chgnet_trainer_epoch_time(atoms_list, args.batch_size, args.repeats, args.device)
    print(f"  CHGNet Trainer    {theirs:8.2f} s", flush=True)
    bare = bare_epoch_time(atoms_list, args.batch_size, args.repeats, device=args.device)
    print(f"  bare loop         {bare:8.2f} s   (CHGNet.forward)", flush=True)
    bare_fast = bare_epoch_time(atoms_list, args.batch_size, args.repeats, fast=True, device=args.device)
    print(f"  bare loop, fast   {bare_fast:8.2f} s   (optbench's exact rewrite of CHGNet.forward)")
    print(f"ratio ours / CHGNet Trainer = {ours / theirs:.2f}  (target <= 0.80)")
    print(f"ratio ours / bare loop      = {ours / bare:.2f}  (target <= 1.10)")
    print(f"ratio ours / bare fast loop = {ours / bare_fast:.2f}  (optbench's loop overhead alone)")
    if args.sevennet_n:
        row = bench_sevennet(args.sevennet_n, args.batch_size, args.repeats, args.device)
        print(f"epoch of {row['n']} Si cells (8 atoms, E/F/stress), batch {row['batch_size']}, SevenNet-0, Adam")
        print(f"  optbench          {row['ours_s']:8.2f} s")
        print(f"  SevenNet Trainer  {row['theirs_s']:8.2f} s")
        print(f"ratio ours / SevenNet Trainer = {row['ratio']:.2f}  (target <= 1.00)")


if __name__ == "__main__":
    main()
