"""Sampling with the reference: relaxation, Langevin MD, rattle/strain, rigid scans, and labelling."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from tqdm import tqdm

from optbench.data.parallel import parallel_map
from optbench.data.reference import make_calculator


def roundtrip(atoms: Atoms) -> Atoms:
    """The structure exactly as it reads back from extxyz (positions rounded as written)."""
    buf = io.StringIO()
    # rounded to the written precision and -0.0 -> 0.0, so that round-off noise never reaches the file
    bare = Atoms(numbers=atoms.numbers, positions=_clean(atoms.positions, 8), cell=_clean(atoms.cell[:], 8), pbc=atoms.pbc)
    write(buf, bare, format="extxyz")
    buf.seek(0)
    back = read(buf, format="extxyz")
    back.info = dict(atoms.info)
    return back


def _clean(x, decimals: int):
    return np.round(np.asarray(x, dtype=float), decimals) + 0.0


def _label_one(atoms: Atoms, reference: dict) -> Atoms | None:
    """One frame labelled by a fresh reference calculator; None when its SCF does not converge."""
    from ase.calculators.calculator import CalculationFailed

    atoms = roundtrip(atoms)
    atoms.calc = make_calculator(reference)
    try:
        energy = atoms.get_potential_energy()
    except CalculationFailed:
        return None
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False) if atoms.pbc.all() else None
    atoms.calc = SinglePointCalculator(
        atoms, energy=round(float(energy), 9), forces=_clean(forces, 8),
        stress=None if stress is None else _clean(stress, 10),
    )
    return atoms


def label(frames: list[Atoms], reference: dict, desc: str = "label", workers: int = 1) -> tuple[list[Atoms], int]:
    """Recompute each frame with a fresh reference calculator; attach energy (eV), forces (eV/Å),
    stress (eV/Å^3). Frames whose SCF does not converge are dropped; returns (frames, n_dropped).
    `workers` > 1 labels in that many processes (one thread each); the result is the same."""
    if workers > 1 and len(frames) > 1:
        labelled = parallel_map(_label_one, [(a, reference) for a in frames], workers, desc)
    else:
        labelled = [_label_one(a, reference) for a in tqdm(frames, desc=desc, leave=False)]
    out = [a for a in labelled if a is not None]
    return out, len(labelled) - len(out)


def bfgs_relax(atoms: Atoms, *, cell: bool, fmax: float, steps: int) -> dict[str, Any]:
    """The one relaxer: positions (and the cell when `cell`) in place with ASE's BFGS, with the
    calculator `atoms` holds. Returns {"converged": bool, "steps": int, "fmax": eV/Å reached}."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    target = FrechetCellFilter(atoms) if cell else atoms
    opt = BFGS(target, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps)) if steps > 0 else False
    forces = target.get_forces()  # of the last BFGS evaluation: the calculator's cached results
    return {"converged": converged, "steps": int(opt.nsteps), "fmax": float(np.sqrt((forces**2).sum(axis=1)).max())}


def relax(atoms: Atoms, reference: dict, cell: bool = False, fmax: float = 0.01, steps: int = 200) -> Atoms:
    """Minimise with the reference (BFGS; with the cell too when `cell`); returns a new Atoms."""
    atoms = atoms.copy()
    atoms.calc = make_calculator({**reference, "wavefunction_restart": True})
    bfgs_relax(atoms, cell=cell, fmax=fmax, steps=steps)
    atoms.calc = None
    return atoms


def thermalize(atoms: Atoms, temperature_K: float, rng) -> None:
    """Maxwell-Boltzmann velocities at `temperature_K` drawn from `rng`, centre-of-mass motion removed."""
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)


def langevin_integrator(atoms: Atoms, *, timestep_fs: float, temperature_K: float, friction_per_fs: float, rng,
                        fixcm: bool = True):
    """The one Langevin thermostat (ASE's `Langevin`), timestep in fs and friction in 1/fs."""
    from ase.md.langevin import Langevin

    return Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                    fixcm=fixcm, rng=rng)


def langevin(
    atoms: Atoms, reference: dict, *, temperature_K: float, timestep_fs: float, n_equil: int,
    n_frames: int, interval: int, rng: np.random.RandomState, friction: float = 0.02, desc: str = "MD",
) -> list[Atoms]:
    """NVT Langevin MD driven by the reference; returns `n_frames` snapshots taken every `interval` steps."""
    atoms = atoms.copy()
    atoms.calc = make_calculator({**reference, "wavefunction_restart": True})
    thermalize(atoms, temperature_K, rng)
    dyn = langevin_integrator(atoms, timestep_fs=timestep_fs, temperature_K=temperature_K, friction_per_fs=friction, rng=rng)
    frames = []
    with tqdm(total=n_equil + n_frames * interval, desc=desc, leave=False) as bar:
        for _ in range(n_equil):
            dyn.run(1)
            bar.update(1)
        for _ in range(n_frames):
            dyn.run(interval)
            bar.update(interval)
            snap = Atoms(numbers=atoms.numbers, positions=atoms.get_positions(wrap=atoms.pbc.all()), cell=atoms.cell, pbc=atoms.pbc)
            snap.info["temperature_K"] = temperature_K
            frames.append(snap)
    return frames


def strain(atoms: Atoms, magnitude: float, rng: np.random.RandomState) -> Atoms:
    """Apply a random symmetric strain with components uniform in [-magnitude, magnitude]."""
    eps = rng.uniform(-magnitude, magnitude, size=(3, 3))
    eps = 0.5 * (eps + eps.T)
    out = atoms.copy()
    out.set_cell(atoms.cell @ (np.eye(3) + eps), scale_atoms=True)
    out.info["strain_max"] = float(np.abs(eps).max())
    return out


def rattle(atoms: Atoms, stdev: float, rng: np.random.RandomState) -> Atoms:
    """Gaussian displacement of every atom with standard deviation `stdev` Å."""
    out = atoms.copy()
    out.positions = out.positions + rng.normal(scale=stdev, size=out.positions.shape)
    out.info["rattle_A"] = stdev
    return out


def dihedral_scan(atoms: Atoms, quad: tuple[int, int, int, int], n: int, mask: list[int]) -> list[Atoms]:
    """Rigid scan of dihedral `quad` over 360 degrees in `n` steps, moving the atoms in `mask`."""
    frames = []
    start = atoms.get_dihedral(*quad)
    for k in range(n):
        a = atoms.copy()
        a.set_dihedral(*quad, start + 360.0 * k / n, mask=mask)
        a.info["scan"] = f"dihedral {quad}"
        a.info["scan_value"] = float((start + 360.0 * k / n) % 360)
        frames.append(a)
    return frames


def proton_transfer_scan(atoms: Atoms, donor: int, acceptor: int, proton: int, n: int) -> list[Atoms]:
    """Move the proton linearly from 1.0 Å off the donor to 1.0 Å off the acceptor, other atoms fixed."""
    d, a = atoms.positions[donor], atoms.positions[acceptor]
    axis = (a - d) / np.linalg.norm(a - d)
    length = np.linalg.norm(a - d)
    offset = atoms.positions[proton] - d
    perp = offset - axis * (offset @ axis)  # keep the proton's bend off the O...O line
    frames = []
    for x in np.linspace(1.0, length - 1.0, n):
        f = atoms.copy()
        f.positions[proton] = d + axis * x + perp
        f.info["scan"] = "proton transfer"
        f.info["scan_value"] = float(x)
        frames.append(f)
    return frames
