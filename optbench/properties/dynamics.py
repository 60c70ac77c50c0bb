"""Shared MD engine: ASE Langevin (NVT), Velocity Verlet (NVE) and Langevin-BAOAB with a hydrostatic
barostat (NPT), an equilibration phase that runs until the temperature is stable, stability checks that
stop a failed run early. The statistics of the samples (block averages, MSD, diffusion) live in
optbench.properties.statistics, importable from here as before."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.data import covalent_radii
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list
from tqdm.auto import tqdm

from optbench.data.sampling import langevin_integrator, thermalize
from optbench.progress import hidden
from optbench.properties.statistics import (
    DIFFUSIVE_EXPONENT,
    block_average,
    diffusion_fit,
    msd_curve,
    remove_com,
)


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
    phases: list = field(default_factory=list)  # "equil", "nvt", "nve" or "npt" per sample
    positions: list = field(default_factory=list)
    potential_eV: list = field(default_factory=list)
    kinetic_eV: list = field(default_factory=list)
    temperature_K: list = field(default_factory=list)
    volume_A3: list = field(default_factory=list)
    equilibration: dict | None = None  # see `Equilibration.record`
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
            length = np.linalg.norm(pos[bj] - pos[bi] + S @ atoms.cell.array, axis=1)  # cell may change (NPT)
            broken = length > lim.bond_break_factor * (self.radii[bi] + self.radii[bj])
            if broken.mean() > lim.max_broken_fraction:
                return f"broken bonds: {int(broken.sum())} of {len(bi)}"
        return None


def _failed(reason: str, step: int) -> dict:
    kind = reason.split(":")[0].replace(" ", "_")  # explosion | atoms_too_close | broken_bonds
    return {"stable": False, "verdict": kind, "reason": reason, "step": step}


@dataclass
class Phase:
    """One stretch of a run: "equil" (Langevin NVT until the temperature is stable, at most `steps`),
    "nvt" (Langevin), "nve" (Velocity Verlet) or "npt" (Langevin-BAOAB, hydrostatic barostat).

    `friction_per_fs` (1/fs) is the Langevin friction of the atoms (None: run_md's default)."""

    kind: str
    steps: int
    friction_per_fs: float | None = None


@dataclass
class Equilibration:
    """When the "equil" phase stops: after each block of `block_steps` steps, once the mean
    temperatures of the last `n_blocks` blocks are all within `tolerance_K` of the target."""

    block_steps: int = 200
    tolerance_K: float = 15.0
    n_blocks: int = 2

    def done(self, block_means: list[float], target_K: float) -> bool:
        last = block_means[-self.n_blocks:]
        return len(last) == self.n_blocks and all(abs(t - target_K) <= self.tolerance_K for t in last)


def _integrator(phase: Phase, atoms: Atoms, *, timestep_fs: float, temperature_K: float, friction: float,
                pressure_bar: float, barostat_tau_fs: float, rng):
    dt = timestep_fs * units.fs
    if phase.kind in ("nvt", "equil"):
        return langevin_integrator(atoms, timestep_fs=timestep_fs, temperature_K=temperature_K, friction_per_fs=friction,
                                   rng=rng, fixcm=False)
    if phase.kind == "nve":
        return VelocityVerlet(atoms, dt)
    if phase.kind == "npt":
        return LangevinBAOAB(atoms, dt, temperature_K=temperature_K, externalstress=-pressure_bar * units.bar,
                             hydrostatic=True, T_tau=units.fs / friction, P_tau=barostat_tau_fs * units.fs, rng=rng)
    raise ValueError(f"unknown MD phase '{phase.kind}'")


def run_md(atoms: Atoms, calculator, phases: list, *, temperature_K: float,
           timestep_fs: float, friction_per_fs: float, seed: int, sample_every: int,
           limits: StabilityLimits, progress: bool = False, desc: str = "md",
           equilibration: Equilibration | None = None, pressure_bar: float = 1.0,
           barostat_tau_fs: float = 500.0, on_sample=None) -> Trajectory:
    """Run the `phases` (`Phase`s or (kind, steps) tuples) from Maxwell-Boltzmann velocities (seeded).

    Samples every `sample_every` steps (and at t = 0); stops at the first failed stability check.
    An "equil" phase ends early by the `equilibration` criterion; its record (steps, block means,
    converged) is `Trajectory.equilibration`. NPT runs at `pressure_bar` with cell time constant
    `barostat_tau_fs`. `on_sample(traj)`, when given, is called after each sample (to checkpoint a long
    run: a run cut after k steps holds exactly the samples of the same run with k steps).
    """
    phases = [p if isinstance(p, Phase) else Phase(*p) for p in phases]
    equilibration = equilibration or Equilibration()
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    thermalize(atoms, temperature_K, rng)
    run = _Run(atoms, Trajectory(), StabilityMonitor(atoms, limits, temperature_K), timestep_fs, sample_every,
               tqdm(total=sum(p.steps for p in phases), desc=desc, disable=hidden(progress), leave=False), on_sample)
    try:
        reason = run.monitor.check(atoms)
        run.sample(phases[0].kind if phases else "nvt")
        for phase in phases:
            if reason:
                break
            dyn = _integrator(phase, atoms, timestep_fs=timestep_fs, temperature_K=temperature_K,
                              friction=phase.friction_per_fs or friction_per_fs, pressure_bar=pressure_bar,
                              barostat_tau_fs=barostat_tau_fs, rng=rng)
            reason = _run_phase(run, phase, dyn, equilibration, temperature_K)
        if reason and run.traj.verdict["stable"]:
            run.traj.verdict = _failed(reason, run.traj.steps_done)
    finally:
        run.bar.close()
    return run.traj


@dataclass
class _Run:
    """One run_md call under way: its atoms, its trajectory so far, the clock."""

    atoms: Atoms
    traj: Trajectory
    monitor: StabilityMonitor
    timestep_fs: float
    sample_every: int
    bar: Any
    on_sample: Any = None
    time_fs: float = 0.0

    def sample(self, phase: str) -> None:
        atoms, traj = self.atoms, self.traj
        traj.times_fs.append(self.time_fs)
        traj.phases.append(phase)
        traj.positions.append(atoms.get_positions())
        traj.potential_eV.append(float(atoms.get_potential_energy()))
        traj.kinetic_eV.append(float(atoms.get_kinetic_energy()))
        traj.temperature_K.append(float(atoms.get_temperature()) if len(atoms) else 0.0)
        periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3
        traj.volume_A3.append(float(atoms.get_volume()) if periodic else None)

    def advance(self, dyn, steps: int, phase: str) -> str | None:
        """`steps` steps of `dyn`, then the stability check: the failure's reason, or a new sample."""
        dyn.run(steps)
        self.traj.steps_done += steps
        self.time_fs += steps * self.timestep_fs
        self.bar.update(steps)
        reason = self.monitor.check(self.atoms)
        if reason:
            self.traj.verdict = _failed(reason, self.traj.steps_done)
            return reason
        self.sample(phase)
        if self.on_sample is not None:
            self.on_sample(self.traj)
        return None


def _run_phase(run: _Run, phase: Phase, dyn, criterion: Equilibration, temperature_K: float) -> str | None:
    """One phase, sampled every `sample_every` steps; an "equil" phase stops once `criterion` holds and
    keeps its record in `traj.equilibration`. Returns the reason of a failed stability check."""
    traj, equil = run.traj, phase.kind == "equil"
    done, block_T, block_means, reason = 0, [], [], None
    if equil:
        traj.equilibration = {"steps": 0, "time_fs": 0.0, "converged": False, "block_means_K": block_means,
                              "criterion": f"last {criterion.n_blocks} blocks of {criterion.block_steps} "
                                           f"steps within {criterion.tolerance_K} K of {temperature_K} K"}
    while done < phase.steps:
        chunk = min(run.sample_every, phase.steps - done)
        reason = run.advance(dyn, chunk, phase.kind)
        done += chunk
        if reason:
            break
        if equil:
            block_T.append(traj.temperature_K[-1])
            if len(block_T) == max(1, criterion.block_steps // run.sample_every):  # a block is complete
                block_means.append(float(np.mean(block_T)))
                block_T = []
                traj.equilibration.update(steps=done, time_fs=done * run.timestep_fs)
                if criterion.done(block_means, temperature_K):
                    traj.equilibration["converged"] = True
                    break
    if equil:
        traj.equilibration.update(steps=done, time_fs=done * run.timestep_fs)
    return reason


__all__ = ["DIFFUSIVE_EXPONENT", "Equilibration", "Phase", "StabilityLimits", "StabilityMonitor", "Trajectory",
           "block_average", "diffusion_fit", "msd_curve", "remove_com", "run_md"]
