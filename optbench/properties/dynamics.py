"""Shared MD engine: ASE Langevin (NVT) and Velocity Verlet (NVE) with stability checks that stop
a failed run early."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.data import covalent_radii
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list
from tqdm.auto import tqdm


@dataclass
class StabilityLimits:
    """When a trajectory counts as failed.

    explosion: temperature above `max_temperature_factor` x target (floor 100 K), a force above
    `max_force` eV/Å, or a non-finite energy; atoms too close: a pair nearer than
    `min_distance_factor` x the sum of covalent radii; broken bonds: more than `max_broken_fraction`
    of the initial bonds (natural cutoffs x 1.1) stretched beyond `bond_break_factor` x the sum of
    covalent radii (None disables the bond check).
    """

    max_temperature_factor: float = 5.0
    max_force: float = 50.0
    min_distance_factor: float = 0.5
    bond_break_factor: float = 1.6
    max_broken_fraction: float | None = 0.1


@dataclass
class Trajectory:
    """Samples of one MD run: times fs, unwrapped positions Å, energies eV, temperatures K."""

    times_fs: list = field(default_factory=list)
    phases: list = field(default_factory=list)  # "nvt" or "nve" per sample
    positions: list = field(default_factory=list)
    potential_eV: list = field(default_factory=list)
    kinetic_eV: list = field(default_factory=list)
    temperature_K: list = field(default_factory=list)
    verdict: dict = field(default_factory=lambda: {"stable": True, "verdict": "stable", "reason": None, "step": None})
    steps_done: int = 0

    def arrays(self, phase: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times fs, positions (T, N, 3)) of the samples of `phase` (all when None)."""
        idx = [i for i, p in enumerate(self.phases) if phase is None or p == phase]
        return np.array([self.times_fs[i] for i in idx]), np.array([self.positions[i] for i in idx])


class StabilityMonitor:
    """Checks a running structure against `StabilityLimits`; `check` returns a reason or None."""

    def __init__(self, atoms: Atoms, limits: StabilityLimits, temperature_K: float):
        self.limits = limits
        self.t_max = limits.max_temperature_factor * max(temperature_K, 100.0)
        self.radii = covalent_radii[atoms.numbers]
        self.cutoff = 2 * self.radii.max() * limits.min_distance_factor
        i, j, S = neighbor_list("ijS", atoms, natural_cutoffs(atoms, mult=1.1))
        keep = i < j
        self.bonds = (i[keep], j[keep], S[keep])
        self.cell = atoms.cell.array.copy()

    def check(self, atoms: Atoms) -> str | None:
        lim = self.limits
        epot = atoms.get_potential_energy()
        forces = atoms.get_forces()
        if not np.isfinite(epot) or not np.all(np.isfinite(forces)):
            return "explosion: non-finite energy or forces"
        if len(atoms) > 1:
            i, j, d = neighbor_list("ijd", atoms, self.cutoff)
            close = d < lim.min_distance_factor * (self.radii[i] + self.radii[j])
            if np.any(close):
                return f"atoms too close: {d[close].min():.2f} Å"
        if atoms.get_temperature() > self.t_max:
            return f"explosion: temperature {atoms.get_temperature():.0f} K above {self.t_max:.0f} K"
        fmax = float(np.sqrt((forces**2).sum(axis=1)).max())
        if fmax > lim.max_force:
            return f"explosion: force {fmax:.1f} eV/Å above {lim.max_force} eV/Å"
        bi, bj, S = self.bonds
        if lim.max_broken_fraction is not None and len(bi):
            pos = atoms.get_positions()
            length = np.linalg.norm(pos[bj] - pos[bi] + S @ self.cell, axis=1)
            broken = length > lim.bond_break_factor * (self.radii[bi] + self.radii[bj])
            if broken.mean() > lim.max_broken_fraction:
                return f"broken bonds: {int(broken.sum())} of {len(bi)}"
        return None


def _failed(reason: str, step: int) -> dict:
    kind = reason.split(":")[0].replace(" ", "_")  # explosion | atoms_too_close | broken_bonds
    return {"stable": False, "verdict": kind, "reason": reason, "step": step}


def run_md(atoms: Atoms, calculator, phases: list[tuple[str, int]], *, temperature_K: float,
           timestep_fs: float, friction_per_fs: float, seed: int, sample_every: int,
           limits: StabilityLimits, progress: bool = False, desc: str = "md") -> Trajectory:
    """Run the `phases` ([("nvt"|"nve", steps), ...]) from Maxwell-Boltzmann velocities (seeded).

    Samples every `sample_every` steps (and at t = 0); stops at the first failed stability check.
    """
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    monitor = StabilityMonitor(atoms, limits, temperature_K)
    traj = Trajectory()
    time = 0.0
    n = len(atoms)

    def sample(phase: str) -> None:
        traj.times_fs.append(time)
        traj.phases.append(phase)
        traj.positions.append(atoms.get_positions())
        traj.potential_eV.append(float(atoms.get_potential_energy()))
        traj.kinetic_eV.append(float(atoms.get_kinetic_energy()))
        traj.temperature_K.append(float(atoms.get_temperature()) if n else 0.0)

    total = sum(steps for _, steps in phases)
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        reason = monitor.check(atoms)
        sample(phases[0][0] if phases else "nvt")
        for phase, steps in phases:
            if reason:
                break
            if phase == "nvt":
                dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                               friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
            elif phase == "nve":
                dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
            else:
                raise ValueError(f"unknown MD phase '{phase}'")
            done = 0
            while done < steps:
                chunk = min(sample_every, steps - done)
                dyn.run(chunk)
                done += chunk
                traj.steps_done += chunk
                time += chunk * timestep_fs
                bar.update(chunk)
                reason = monitor.check(atoms)
                if reason:
                    traj.verdict = _failed(reason, traj.steps_done)
                    break
                sample(phase)
        if reason and traj.verdict["stable"]:
            traj.verdict = _failed(reason, traj.steps_done)
    finally:
        bar.close()
    return traj


def remove_com(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Positions (T, N, 3) relative to each frame's centre of mass."""
    com = (positions * masses[None, :, None]).sum(axis=1) / masses.sum()
    return positions - com[:, None, :]


def msd_curve(times_fs: np.ndarray, positions: np.ndarray, dims=(0, 1, 2),
              max_lag_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Mean-squared displacement (Å^2) against lag time (fs) of unwrapped `positions` (T, N, 3),
    averaged over time origins and atoms, over the coordinates `dims`."""
    if len(positions) < 3 or positions.shape[1] == 0:
        return np.zeros(0), np.zeros(0)
    rel = positions[:, :, list(dims)]
    n_lag = max(2, int(len(rel) * max_lag_fraction))
    lags = np.arange(n_lag)
    msd = np.array([0.0] + [float(((rel[k:] - rel[:-k]) ** 2).sum(axis=2).mean()) for k in lags[1:]])
    dt = times_fs[1] - times_fs[0]
    return lags * dt, msd


def diffusion_coefficient(lag_fs: np.ndarray, msd: np.ndarray, n_dims: int) -> float | None:
    """D in Å^2/ps from a linear fit of MSD over the second half of the lags (Einstein relation)."""
    if len(lag_fs) < 4:
        return None
    start = len(lag_fs) // 2
    slope = np.polyfit(lag_fs[start:], msd[start:], 1)[0]  # Å^2/fs
    return float(slope / (2 * n_dims) * 1000.0)
