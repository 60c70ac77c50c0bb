"""Molecular dynamics observables: RDF, density, MSD and diffusion, NVE drift, stability."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry.rdf import get_rdf

from optbench.errors import InputError
from optbench.properties.base import Property, is_periodic_3d, scalar_errors
from optbench.properties.dynamics import (
    StabilityLimits,
    diffusion_coefficient,
    msd_curve,
    remove_com,
    run_md,
)

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


@dataclasses.dataclass
class MD(Property):
    """NVT (Langevin) then NVE (Velocity Verlet) run and its observables.

    Result: "stable", "verdict" (stable|explosion|atoms_too_close|broken_bonds), "failure" (reason
    or None), "failed_at_step"; "rdf" ("r_A", "g") averaged
    over the NVT production samples (3D-periodic only); "rdf_first_peak_A"; "density_g_cm3";
    "msd" ("lag_fs", "msd_A2"); "diffusion_A2_per_ps" (and "diffusion_cm2_per_s"); "temperature_mean_K"
    (NVT production); "nve_drift_meV_per_atom_per_ps" (linear fit of total energy per atom) and
    "nve_fluctuation_meV_per_atom" (std); "thermo" ("time_fs", "temperature_K", "etotal_eV").
    """

    name = "md"
    temperature_K: float = 300.0
    timestep_fs: float = 1.0
    friction_per_fs: float = 0.02
    nvt_steps: int = 200
    equilibration_steps: int = 50  # NVT steps discarded before sampling observables
    nve_steps: int = 100
    sample_every: int = 5
    seed: int = 0
    repeat: tuple[int, int, int] = (1, 1, 1)
    rdf_rmax: float = 6.0  # Å; capped at half the smallest cell width
    rdf_nbins: int = 60
    max_temperature_factor: float = 5.0
    max_force: float = 50.0  # eV/Å
    min_distance_factor: float = 0.5
    bond_break_factor: float = 1.6
    max_broken_fraction: float | None = 0.1
    progress: bool = True

    def limits(self) -> StabilityLimits:
        return StabilityLimits(self.max_temperature_factor, self.max_force, self.min_distance_factor,
                               self.bond_break_factor, self.max_broken_fraction)

    def calc(self, atoms: Atoms, calculator, out: str | Path | None = None) -> dict[str, Any]:
        if self.sample_every < 1 or self.nvt_steps < 0 or self.nve_steps < 0:
            raise InputError("sample_every must be >= 1 and step counts >= 0", field="md settings")
        system = atoms.repeat(tuple(self.repeat)) if atoms.pbc.all() else atoms.copy()
        phases = [(p, s) for p, s in (("nvt", self.nvt_steps), ("nve", self.nve_steps)) if s > 0]
        traj = run_md(system, calculator, phases, temperature_K=self.temperature_K, timestep_fs=self.timestep_fs,
                      friction_per_fs=self.friction_per_fs, seed=self.seed, sample_every=self.sample_every,
                      limits=self.limits(), progress=self.progress, desc="md")
        n = len(system)
        times = np.array(traj.times_fs)
        etot = np.array(traj.potential_eV) + np.array(traj.kinetic_eV)
        result: dict[str, Any] = {
            "settings": self.settings(),
            "stable": traj.verdict["stable"],
            "verdict": traj.verdict["verdict"],
            "failure": traj.verdict["reason"],
            "failed_at_step": traj.verdict["step"],
            "steps_done": traj.steps_done,
            "n_atoms": n,
            "density_g_cm3": density_g_cm3(system),
            "thermo": {"time_fs": times, "temperature_K": traj.temperature_K, "etotal_eV": etot},
        }
        phases_arr = np.array(traj.phases)
        prod = (phases_arr == "nvt") & (times >= self.equilibration_steps * self.timestep_fs)
        t_prod = times[prod]
        pos_prod = np.array(traj.positions)[prod] if prod.any() else np.zeros((0, n, 3))
        result["temperature_mean_K"] = float(np.mean(np.array(traj.temperature_K)[prod])) if prod.any() else None

        result["rdf"], result["rdf_first_peak_A"] = None, None
        if system.pbc.all() and len(pos_prod):
            rmax = min(self.rdf_rmax, max_rdf_radius(system))
            frames = []
            for p in pos_prod:
                frame = system.copy()
                frame.positions = p
                frame.wrap()
                frames.append(frame)
            g, r = get_rdf(frames, rmax, self.rdf_nbins)
            result["rdf"] = {"r_A": r, "g": g}
            result["rdf_first_peak_A"] = float(r[int(np.argmax(g))])

        lag, msd = msd_curve(t_prod, remove_com(pos_prod, system.get_masses()))
        D = diffusion_coefficient(lag, msd, 3)
        result["msd"] = {"lag_fs": lag, "msd_A2": msd}
        result["diffusion_A2_per_ps"] = D
        result["diffusion_cm2_per_s"] = None if D is None else D * 1e-4

        nve = phases_arr == "nve"
        if traj.verdict["stable"] and nve.sum() >= 3:
            t_ps = times[nve] / 1000.0
            e = etot[nve] / n * 1000.0  # meV/atom
            result["nve_drift_meV_per_atom_per_ps"] = float(np.polyfit(t_ps - t_ps[0], e, 1)[0])
            result["nve_fluctuation_meV_per_atom"] = float(np.std(e))
            result["nve_max_deviation_meV_per_atom"] = float(np.abs(e - e[0]).max())
        else:
            result["nve_drift_meV_per_atom_per_ps"] = None
            result["nve_fluctuation_meV_per_atom"] = None
            result["nve_max_deviation_meV_per_atom"] = None
        if out is not None:
            self.write_files(result, out)
        return result

    @staticmethod
    def write_files(result: dict, out: str | Path) -> None:
        """rdf.png and msd.png under `out`."""
        from optbench.properties.plots import plot_curves

        if result.get("rdf"):
            plot_curves(result["rdf"]["r_A"], {"g(r)": np.asarray(result["rdf"]["g"])}, "r (Å)", "g(r)", Path(out) / "rdf.png")
        if len(result["msd"]["lag_fs"]):
            plot_curves(result["msd"]["lag_fs"], {"MSD": np.asarray(result["msd"]["msd_A2"])}, "lag (fs)", "MSD (Å$^2$)", Path(out) / "msd.png")

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """RDF difference (mean |g - g_ref| on the common r grid), density, diffusion and peak errors."""
        out: dict[str, Any] = scalar_errors(result, reference, ["density_g_cm3", "diffusion_A2_per_ps", "rdf_first_peak_A", "temperature_mean_K"])
        ra, rb = result.get("rdf"), reference.get("rdf")
        if ra and rb:
            r = np.asarray(ra["r_A"], float)
            rmax = min(r.max(), float(np.max(rb["r_A"])))
            mask = r <= rmax
            g_ref = np.interp(r[mask], np.asarray(rb["r_A"], float), np.asarray(rb["g"], float))
            out["rdf_mean_abs_diff"] = float(np.abs(np.asarray(ra["g"], float)[mask] - g_ref).mean())
        out["stable_model"] = bool(result.get("stable"))
        out["stable_reference"] = bool(reference.get("stable"))
        return out
