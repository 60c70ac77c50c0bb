"""Observables of an MD trajectory, shared by the md and interface properties: density, RDF and its
first peak, production samples, temperature, diffusion, the comparison with a reference (each scalar
with a block-average statistical error, or null with the reason), and the run settings both check."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry.rdf import get_rdf

from optbench.properties.base import Property, is_periodic_3d, require, scalar_errors
from optbench.properties.dynamics import Equilibration, StabilityLimits, Trajectory
from optbench.properties.statistics import block_average, diffusion_fit

AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


def density_g_cm3(atoms: Atoms) -> float | None:
    """Mass density (g/cm^3) of a 3D-periodic cell; None otherwise."""
    if not is_periodic_3d(atoms):
        return None
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_TO_G_PER_CM3)


def max_rdf_radius(atoms: Atoms) -> float:
    """Largest RDF radius (Å) a 3D-periodic cell encloses: half its smallest perpendicular width."""
    cell = atoms.cell.array
    vol = abs(np.linalg.det(cell))
    widths = [vol / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    return 0.5 * min(widths) * 0.999


def first_peak(r: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    """(position Å, height) of the highest maximum of g(r), refined by a parabola through the
    highest bin and its neighbours."""
    i = int(np.argmax(g))
    if 0 < i < len(g) - 1:
        y0, y1, y2 = g[i - 1], g[i], g[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            shift = 0.5 * (y0 - y2) / denom
            return float(r[i] + shift * (r[1] - r[0])), float(y1 - 0.25 * (y0 - y2) * shift)
    return float(r[i]), float(g[i])


def wrapped_frames(system: Atoms, positions: np.ndarray) -> list[Atoms]:
    frames = []
    for p in positions:
        frame = system.copy()
        frame.positions = p
        frame.wrap()
        frames.append(frame)
    return frames


def oo_rdf(system: Atoms, positions: np.ndarray, rmax: float, nbins: int, n_blocks: int) -> dict[str, Any]:
    """Intermolecular O-O g(r) averaged over frames, with block errors per bin and of its first peak."""
    n_o = int((system.numbers == 8).sum())
    if n_o < 2:
        return {"rdf_OO": None, "rdf_OO_reason": f"{n_o} O atom(s): no O-O pairs"}
    gs, r = [], None
    for frame in wrapped_frames(system, positions):
        g, r = get_rdf(frame, rmax, nbins, elements=(8, 8))
        gs.append(g)
    gs = np.array(gs)
    blocks = [b.mean(axis=0) for b in np.array_split(gs, n_blocks)] if len(gs) >= 2 * n_blocks else []
    peaks = np.array([first_peak(r, b) for b in blocks]) if blocks else np.zeros((0, 2))
    pos, height = first_peak(r, gs.mean(axis=0))
    err = [float(peaks[:, k].std(ddof=1) / np.sqrt(len(peaks))) if len(peaks) else None for k in (0, 1)]
    g_err = np.std(blocks, axis=0, ddof=1) / np.sqrt(len(blocks)) if blocks else None
    return {"rdf_OO": {"r_A": r, "g": gs.mean(axis=0), "g_err": g_err}, "rdf_OO_reason": None,
            "rdf_OO_first_peak_A": pos, "rdf_OO_first_peak_A_err": err[0],
            "rdf_OO_first_peak_height": height, "rdf_OO_first_peak_height_err": err[1]}


def production_mask(phases: np.ndarray) -> np.ndarray:
    """Samples of the production NVT run, including the configuration it starts from."""
    prod = phases == "nvt"
    first = int(np.argmax(prod))
    if prod.any() and first > 0:
        prod[first - 1] = True
    return prod


def temperature_summary(temps, target_K: float, tolerance_K: float, n_blocks: int) -> dict[str, Any]:
    """Mean production temperature with its block error, and a flag when it misses the target."""
    mean, err = block_average(temps, n_blocks)
    ok = mean is not None and abs(mean - target_K) <= tolerance_K
    flag = None if ok else ("no production samples" if mean is None else
                            f"mean {mean:.1f} K is {mean - target_K:+.1f} K from the {target_K:g} K target "
                            f"(tolerance {tolerance_K:g} K)")
    return {"temperature_mean_K": mean, "temperature_mean_K_err": err, "temperature_target_K": target_K,
            "temperature_ok": ok, "temperature_flag": flag}


def npt_density(traj: Trajectory, system: Atoms, discard_fs: float, n_blocks: int) -> dict[str, Any]:
    """Mass density (g/cm^3) averaged over the NPT samples after `discard_fs` of volume relaxation."""
    times, phases = np.array(traj.times_fs), np.array(traj.phases)
    npt = np.where(phases == "npt")[0]
    if not is_periodic_3d(system):
        return {"density_g_cm3": None, "density_g_cm3_err": None, "density_g_cm3_reason": "not periodic in 3D"}
    if len(npt) == 0:
        return {"density_g_cm3": None, "density_g_cm3_err": None,
                "density_g_cm3_reason": "no NPT run (npt_steps = 0): the density of an NVT box is its input"}
    keep = npt[times[npt] - times[npt[0]] >= discard_fs]
    mass = system.get_masses().sum() * AMU_PER_A3_TO_G_PER_CM3
    rho = [mass / traj.volume_A3[i] for i in keep]
    mean, err = block_average(rho, n_blocks)
    return {"density_g_cm3": mean, "density_g_cm3_err": err,
            "density_g_cm3_reason": None if mean is not None else "NPT run shorter than its discarded start",
            "npt_averaged_fs": float(times[keep[-1]] - times[keep[0]]) if len(keep) else 0.0}


def species_mask(system: Atoms, species: str | None) -> tuple[np.ndarray, str]:
    """Atoms whose diffusion is measured: those of `species` (e.g. "O": water molecules), else all."""
    mask = np.array([s == species for s in system.get_chemical_symbols()]) if species else np.zeros(len(system), bool)
    return (mask, species) if mask.any() else (np.ones(len(system), bool), "all atoms")


def diffusion_result(times: np.ndarray, rel: np.ndarray, dims, min_lag_fs: float, window_fs: float,
                     prefix: str, atoms_label: str) -> dict[str, Any]:
    """`prefix`_A2_per_ps, its _err and _reason, and the fit record, from COM-free positions `rel`."""
    fit = diffusion_fit(times, rel, dims, min_lag_fs=min_lag_fs, window_fs=window_fs) if len(times) > 1 else {
        "D_A2_per_ps": None, "err_A2_per_ps": None, "reason": "no production samples", "fit_lags_fs": None,
        "msd_exponent": None}
    key = f"{prefix}_A2_per_ps"
    return {key: fit["D_A2_per_ps"], f"{key}_err": fit["err_A2_per_ps"], f"{key}_reason": fit["reason"],
            f"{prefix}_fit": {"lag_fs": fit["fit_lags_fs"], "msd_exponent": fit["msd_exponent"], "atoms": atoms_label,
                              "n_atoms": int(rel.shape[1])}}


def check_run_settings(prop) -> None:
    """Checks shared by MD and Interface: time step, sampling, phase lengths, blocks, limits."""
    require(prop.temperature_K > 0, "temperature_K", f"must be > 0 K, got {prop.temperature_K}")
    require(prop.timestep_fs > 0, "timestep_fs", f"must be > 0 fs, got {prop.timestep_fs}")
    require(prop.sample_every >= 1, "sample_every", f"must be >= 1, got {prop.sample_every}")
    for name in ("equilibration_steps", "nvt_steps", "nve_steps", "npt_steps", "npt_discard_steps"):
        if hasattr(prop, name):
            require(getattr(prop, name) >= 0, name, f"must be >= 0, got {getattr(prop, name)}")
    require(prop.equilibration_block_steps >= 1, "equilibration_block_steps",
            f"must be >= 1, got {prop.equilibration_block_steps}")
    require(prop.n_blocks >= 1, "n_blocks", f"must be >= 1, got {prop.n_blocks}")
    for name in ("friction_per_fs", "production_friction_per_fs"):
        require(getattr(prop, name) >= 0, name, f"must be >= 0 (1/fs), got {getattr(prop, name)}")


def compare_observables(result: dict, reference: dict, keys) -> dict[str, Any]:
    """scalar_errors of `keys`, each with the combined 1-sigma error of model and reference and
    "resolved": |model - reference| > 2 x combined error (None when an error is missing)."""
    out = scalar_errors(result, reference, keys)
    for key, item in out.items():
        ea, eb = result.get(f"{key}_err"), reference.get(f"{key}_err")
        item["model_err"], item["reference_err"] = ea, eb
        if isinstance(ea, (int, float)) and isinstance(eb, (int, float)):
            item["err"] = float(np.hypot(ea, eb))
            item["resolved"] = bool(item["abs"] > 2 * item["err"])
        else:
            item["err"], item["resolved"] = None, None
    return out


def stability_limits(prop) -> StabilityLimits:
    """The stability checks of an MD or Interface property's run, from its settings."""
    return StabilityLimits(prop.max_temperature_factor, prop.max_force, prop.min_distance_factor,
                           prop.bond_break_factor, prop.max_broken_fraction)


def equilibration_criterion(prop) -> Equilibration:
    """When the equilibration phase of an MD or Interface property's run ends, from its settings."""
    return Equilibration(prop.equilibration_block_steps, prop.equilibration_tolerance_K)


@dataclasses.dataclass
class DynamicsSettings(Property):
    """The settings an MD run and a slab (interface) run share, with their checks: thermostat and time
    step, equilibration (ends once two blocks of temperature agree), production, sampling and block
    statistics, the diffusion fit, the seed and the stability limits that stop a failed run."""

    temperature_K: float = 300.0
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.02  # Langevin friction during equilibration (1/fs)
    production_friction_per_fs: float = 0.001  # weak coupling during production: barely slows diffusion
    equilibration_steps: int = 1000  # at most; ends once the temperature is stable
    equilibration_block_steps: int = 100
    equilibration_tolerance_K: float = 15.0
    nvt_steps: int = 200  # production
    sample_every: int = 5
    n_blocks: int = 5
    temperature_tolerance_K: float = 10.0
    diffusion_species: str | None = "O"
    diffusion_min_lag_fs: float = 250.0
    diffusion_window_fs: float = 1000.0
    seed: int = 0
    max_temperature_factor: float = 5.0
    max_force: float = 50.0  # eV/Å
    min_distance_factor: float = 0.5
    bond_break_factor: float = 1.6
    max_broken_fraction: float | None = 0.1
    progress: bool = True

    def validate(self) -> None:
        check_run_settings(self)

    def limits(self) -> StabilityLimits:
        return stability_limits(self)


def run_record(prop, traj: Trajectory, n_atoms: int) -> dict[str, Any]:
    """The head of an MD or Interface result: settings, stability verdict, steps, equilibration record."""
    eq = traj.equilibration or {"steps": 0, "time_fs": 0.0, "converged": False, "block_means_K": [],
                                "criterion": "no equilibration phase"}
    return {"settings": prop.settings(), "stable": traj.verdict["stable"], "verdict": traj.verdict["verdict"],
            "failure": traj.verdict["reason"], "failed_at_step": traj.verdict["step"], "steps_done": traj.steps_done,
            "n_atoms": n_atoms, "equilibration": eq, "equilibrated": bool(eq["converged"])}
