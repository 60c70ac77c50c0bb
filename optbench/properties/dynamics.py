"""Shared MD engine: ASE Langevin (NVT), Velocity Verlet (NVE) and Langevin-BAOAB with a hydrostatic
barostat (NPT), an equilibration phase that runs until the temperature is stable, stability checks that
stop a failed run early, and the statistics of the observables (block averages, MSD, diffusion)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.data import covalent_radii
from ase.md.langevinbaoab import LangevinBAOAB
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list
from tqdm.auto import tqdm

from optbench.data.sampling import langevin_integrator, thermalize


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
    monitor = StabilityMonitor(atoms, limits, temperature_K)
    traj = Trajectory()
    time = 0.0
    n = len(atoms)
    periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3

    def sample(phase: str) -> None:
        traj.times_fs.append(time)
        traj.phases.append(phase)
        traj.positions.append(atoms.get_positions())
        traj.potential_eV.append(float(atoms.get_potential_energy()))
        traj.kinetic_eV.append(float(atoms.get_kinetic_energy()))
        traj.temperature_K.append(float(atoms.get_temperature()) if n else 0.0)
        traj.volume_A3.append(float(atoms.get_volume()) if periodic else None)

    total = sum(p.steps for p in phases)
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        reason = monitor.check(atoms)
        sample(phases[0].kind if phases else "nvt")
        for phase in phases:
            if reason:
                break
            dyn = _integrator(phase, atoms, timestep_fs=timestep_fs, temperature_K=temperature_K,
                              friction=phase.friction_per_fs or friction_per_fs, pressure_bar=pressure_bar,
                              barostat_tau_fs=barostat_tau_fs, rng=rng)
            done, block_T, block_means = 0, [], []
            if phase.kind == "equil":
                traj.equilibration = {"steps": 0, "time_fs": 0.0, "converged": False, "block_means_K": block_means,
                                      "criterion": f"last {equilibration.n_blocks} blocks of {equilibration.block_steps} "
                                                   f"steps within {equilibration.tolerance_K} K of {temperature_K} K"}
            while done < phase.steps:
                chunk = min(sample_every, phase.steps - done)
                dyn.run(chunk)
                done += chunk
                traj.steps_done += chunk
                time += chunk * timestep_fs
                bar.update(chunk)
                reason = monitor.check(atoms)
                if reason:
                    traj.verdict = _failed(reason, traj.steps_done)
                    break
                sample(phase.kind)
                if on_sample is not None:
                    on_sample(traj)
                if phase.kind == "equil":
                    block_T.append(traj.temperature_K[-1])
                    if len(block_T) == max(1, equilibration.block_steps // sample_every):  # a block is complete
                        block_means.append(float(np.mean(block_T)))
                        block_T = []
                        traj.equilibration.update(steps=done, time_fs=done * timestep_fs)
                        if equilibration.done(block_means, temperature_K):
                            traj.equilibration["converged"] = True
                            break
            if phase.kind == "equil":
                traj.equilibration.update(steps=done, time_fs=done * timestep_fs)
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


def block_average(x, n_blocks: int = 5) -> tuple[float | None, float | None]:
    """(mean, standard error) of a correlated series from `n_blocks` contiguous block means:
    error = std(block means, ddof=1) / sqrt(n_blocks). Blocks much longer than the correlation time
    make the block means independent. (None, None) for an empty series; error None below
    2 samples per block."""
    x = np.asarray([v for v in x if v is not None], float)
    if len(x) == 0:
        return None, None
    if len(x) < 2 * n_blocks or n_blocks < 2:
        return float(x.mean()), None
    blocks = np.array_split(x, n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(x.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


DIFFUSIVE_EXPONENT = (0.7, 1.3)  # accepted log-log slope of the MSD over the fitted lags (1 = diffusive)


def diffusion_fit(times_fs: np.ndarray, positions: np.ndarray, dims=(0, 1, 2), *, min_lag_fs: float,
                  window_fs: float) -> dict:
    """Einstein diffusion coefficient from the MSD of unwrapped `positions` (T, N, 3) over lags
    [`min_lag_fs`, `min_lag_fs` + `window_fs`], which must span at most half the run.

    Returns {"D_A2_per_ps", "err_A2_per_ps" (std of the per-atom fits / sqrt(N): atoms as blocks),
    "reason" (why D is None), "fit_lags_fs", "msd_exponent" (log-log slope over the window)}.
    D is None when the run is shorter than 2 x the largest lag, or the MSD is not diffusive there
    (exponent outside DIFFUSIVE_EXPONENT)."""
    a, b = min_lag_fs, min_lag_fs + window_fs
    out = {"D_A2_per_ps": None, "err_A2_per_ps": None, "reason": None, "fit_lags_fs": [a, b], "msd_exponent": None}
    run = float(times_fs[-1] - times_fs[0]) if len(times_fs) > 1 else 0.0
    if run < 2 * b or positions.shape[1] == 0:
        out["reason"] = (f"run {run / 1000:.2f} ps < 2 x {b / 1000:.2f} ps (MSD fitted over lags "
                         f"{a / 1000:.2f}-{b / 1000:.2f} ps)") if positions.shape[1] else "no atoms to follow"
        return out
    dt = float(times_fs[1] - times_fs[0])
    ks = np.arange(max(1, int(round(a / dt))), int(round(b / dt)) + 1)
    rel = positions[:, :, list(dims)]
    per_atom = np.array([((rel[k:] - rel[:-k]) ** 2).sum(axis=2).mean(axis=0) for k in ks])  # (K, N) Å^2
    lag = ks * dt
    slopes = np.polyfit(lag, per_atom, 1)[0]  # Å^2/fs per atom
    d_atoms = slopes / (2 * len(dims)) * 1000.0  # Å^2/ps
    msd = per_atom.mean(axis=1)
    alpha = float(np.polyfit(np.log(lag), np.log(np.maximum(msd, 1e-300)), 1)[0])
    out["msd_exponent"] = alpha
    if not DIFFUSIVE_EXPONENT[0] <= alpha <= DIFFUSIVE_EXPONENT[1]:
        out["reason"] = (f"MSD not diffusive over lags {a / 1000:.2f}-{b / 1000:.2f} ps "
                         f"(log-log slope {alpha:.2f}, 1 expected)")
        return out
    out["D_A2_per_ps"] = float(d_atoms.mean())
    out["err_A2_per_ps"] = float(d_atoms.std(ddof=1) / np.sqrt(len(d_atoms))) if len(d_atoms) > 1 else None
    return out
