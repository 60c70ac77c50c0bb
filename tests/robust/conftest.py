"""Tiny inputs for the robustness suites, built here (no shared data): rattled fcc Cu cells
labelled by ASE's EMT, and a user optimizer module that fails on purpose."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

USER_OPTIM = '''
import torch


class RaisesInInit(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, **kw):
        raise RuntimeError("this optimizer refuses to be built")


class RaisesInStep(torch.optim.SGD):
    """Fine for one step (the study's toy check), raises from the second on."""

    def step(self, closure=None):
        self.n_steps = getattr(self, "n_steps", 0) + 1
        if self.n_steps >= 2:
            raise RuntimeError("boom in step")
        return super().step(closure)


class NotAnOptimizer:
    pass
'''


def cu_frames(n: int = 6, seed: int = 0):
    """`n` rattled 4-atom fcc Cu cells (a = 3.6 Å) with EMT energy (eV), forces (eV/Å), stress (eV/Å^3)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed + i)
        atoms.calc = EMT()
        labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress())
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    return frames


class Workspace:
    """Data files, a user optimizer module and (lazily) one finished run, under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        frames = cu_frames(6)
        self.train = self.write("train.xyz", frames[:4])
        self.test = self.write("test.xyz", frames[4:])
        self.other_train = self.write("train_b.xyz", cu_frames(4, seed=100))
        (self.root / "user_optim_mod.py").write_text(USER_OPTIM)
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        self._done = None
        self._n = 0

    def write(self, name: str, frames) -> Path:
        from ase.io import write

        path = self.root / name
        write(path, frames, format="extxyz")
        return path

    def frames(self):
        from ase.io import read

        return read(self.train, index=":")

    def fresh(self, name: str) -> Path:
        """A path that does not exist yet."""
        self._n += 1
        return self.root / f"{name}-{self._n}"

    def finetune_args(self, out: Path, *extra: str, train: Path | None = None) -> list[str]:
        return ["finetune", "--model", "chgnet", "--train", str(train or self.train), "--test", f"id={self.test}",
                "--max-steps", "2", "--batch-size", "2", "--eval-every", "1", "--checkpoint-every", "1",
                "--out", str(out), *extra]

    def done_run(self) -> Path:
        """A finished tiny run (made once); copy it before damaging it."""
        if self._done is None:
            from optbench.cli import main

            self._done = self.root / "done"
            assert main(self.finetune_args(self._done)) == 0
        return self._done

    def copy_of_done(self) -> Path:
        target = self.fresh("copy")
        shutil.copytree(self.done_run(), target)
        return target

    def study(self, path_name: str, optimizers: dict, **extra) -> Path:
        import yaml

        study = {"name": "tiny", "datasets": [{"name": "cu", "train": str(self.train), "tests": {"id": str(self.test)}}],
                 "optimizers": optimizers, "seeds": [0], "max_steps": 2, "eval_every": 1, "batch_size": 2,
                 "refine": False, "properties": False, "curvature": None, "forgetting": False, **extra}
        path = self.root / path_name
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        return path


@pytest.fixture(scope="session")
def ws(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("robust"))
