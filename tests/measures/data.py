"""Tiny labelled sets built here (ASE's EMT as the reference): no shared data needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write


def _label(atoms):
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        results["stress"] = atoms.get_stress()
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def rattled_ethanol(path: Path, n: int, seed: int = 0, amplitude: float = 0.08) -> Path:
    """`n` rattled ethanol molecules with EMT energies (eV) and forces (eV/Å)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        a = molecule("CH3CH2OH")
        a.positions += rng.normal(0, amplitude, a.positions.shape)
        frames.append(_label(a))
    write(path, frames, format="extxyz")
    return path


def strained_copper(path: Path, n: int, seed: int = 0) -> Path:
    """`n` strained, rattled 4-atom Cu cells with EMT energies, forces and stresses (eV/Å^3)."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.set_cell(a.cell @ (np.eye(3) + rng.normal(0, 0.02, (3, 3))), scale_atoms=True)
        a.positions += rng.normal(0, 0.05, a.positions.shape)
        frames.append(_label(a))
    write(path, frames, format="extxyz")
    return path
