"""Molecular dynamics observables of a periodic liquid (or solid): temperature after equilibration,
O-O and all-pair RDF, diffusion, density from an NPT run, NVE drift, stability; each with a
block-average statistical error, or null with the reason."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry.rdf import get_rdf

from optbench.properties.base import require
from optbench.properties.dynamics import (
    Phase,
    Trajectory,
    run_md,
)
from optbench.properties.observables import (
    AMU_PER_A3_TO_G_PER_CM3,
    DynamicsSettings,
    check_run_settings,
    compare_observables,
    density_g_cm3,
    diffusion_result,
    equilibration_criterion,
    first_peak,
    max_rdf_radius,
    npt_density,
    oo_rdf,
    production_mask,
    run_record,
    species_mask,
    temperature_summary,
    wrapped_frames,
)
from optbench.properties.statistics import msd_curve, remove_com

# the observables moved to optbench.properties.observables; importable from here as before
__all__ = ["AMU_PER_A3_TO_G_PER_CM3", "MD", "OBSERVABLES", "check_run_settings", "compare_observables", "density_g_cm3",
           "diffusion_result", "first_peak", "max_rdf_radius", "npt_density", "oo_rdf", "production_mask",
           "species_mask", "temperature_summary"]

# scalar observables that carry "<key>_err" (1 sigma) and are compared with the reference
OBSERVABLES = ("temperature_mean_K", "rdf_OO_first_peak_A", "rdf_OO_first_peak_height", "diffusion_A2_per_ps",
               "density_g_cm3")


@dataclasses.dataclass
class MD(DynamicsSettings):
    """Equilibrate (Langevin NVT until the temperature is stable), produce (weak-friction Langevin NVT:
    temperature, RDFs, diffusion), then NVE (energy drift) and NPT (density).

    Result: "stable", "verdict" (stable|explosion|atoms_too_close|broken_bonds), "failure",
    "failed_at_step", "steps_done"; "equilibration" (steps, block means, converged);
    "temperature_mean_K" (production) with "temperature_mean_K_err", "temperature_ok" (within
    `temperature_tolerance_K` of the target) and "temperature_flag"; "rdf" ("r_A", "g": all pairs,
    intramolecular bonds included); "rdf_OO" (intermolecular O-O g(r) with "g_err"),
    "rdf_OO_first_peak_A", "rdf_OO_first_peak_height"; "msd" ("lag_fs", "msd_A2" of the
    `diffusion_species` atoms); "diffusion_A2_per_ps" (and "diffusion_cm2_per_s") from the MSD over lags
    [`diffusion_min_lag_fs`, + `diffusion_window_fs`], None with "diffusion_A2_per_ps_reason" when the
    run is shorter than twice the largest lag or the MSD is not diffusive there; "density_g_cm3" from
    the NPT run only (None with reason when npt_steps = 0); "nve_drift_meV_per_atom_per_ps",
    "nve_fluctuation_meV_per_atom"; "thermo" ("time_fs", "temperature_K", "etotal_eV", "phase").
    Every `<key>_err` is one standard error from `n_blocks` block averages (diffusion: atoms as blocks).
    """

    name = "md"
    nve_steps: int = 100
    npt_steps: int = 0
    npt_discard_steps: int = 200  # volume relaxation at the start of the NPT run, not averaged
    pressure_bar: float = 1.0
    barostat_tau_fs: float = 500.0
    repeat: tuple[int, int, int] = (1, 1, 1)
    rdf_rmax: float = 6.0  # Å; capped at half the smallest cell width
    rdf_nbins: int = 60

    def phases(self) -> list[Phase]:
        plan = [Phase("equil", self.equilibration_steps), Phase("nvt", self.nvt_steps, self.production_friction_per_fs),
                Phase("nve", self.nve_steps), Phase("npt", self.npt_steps, self.production_friction_per_fs)]
        return [p for p in plan if p.steps > 0]

    def validate(self) -> None:
        super().validate()
        require(len(self.repeat) == 3 and all(isinstance(n, (int, np.integer)) and n >= 1 for n in self.repeat),
                "repeat", f"must be 3 whole numbers >= 1, got {list(self.repeat)}")
        require(self.rdf_rmax > 0, "rdf_rmax", f"must be > 0 Å, got {self.rdf_rmax}")
        require(self.rdf_nbins >= 1, "rdf_nbins", f"must be >= 1, got {self.rdf_nbins}")

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        system = atoms.repeat(tuple(self.repeat)) if atoms.pbc.all() else atoms.copy()
        return self.analyse(self.run(system, calculator), system)

    def run(self, system: Atoms, calculator, on_sample=None) -> Trajectory:
        """The MD run itself (equil, production NVT, NVE, NPT) on the prepared `system`."""
        return run_md(system, calculator, self.phases(), temperature_K=self.temperature_K, timestep_fs=self.timestep_fs,
                      friction_per_fs=self.friction_per_fs, seed=self.seed, sample_every=self.sample_every,
                      limits=self.limits(), progress=self.progress, desc="md", equilibration=equilibration_criterion(self),
                      pressure_bar=self.pressure_bar, barostat_tau_fs=self.barostat_tau_fs, on_sample=on_sample)

    def analyse(self, traj: Trajectory, system: Atoms) -> dict[str, Any]:
        """Every observable of a finished run."""
        n = len(system)
        times = np.array(traj.times_fs)
        phases = np.array(traj.phases)
        etot = np.array(traj.potential_eV) + np.array(traj.kinetic_eV)
        result: dict[str, Any] = run_record(self, traj, n)
        result["thermo"] = {"time_fs": times, "temperature_K": traj.temperature_K, "etotal_eV": etot, "phase": traj.phases}
        prod = production_mask(phases)
        t_prod = times[prod]
        pos_prod = np.array(traj.positions)[prod] if prod.any() else np.zeros((0, n, 3))
        result["production_fs"] = float(t_prod[-1] - t_prod[0]) if len(t_prod) > 1 else 0.0
        result.update(temperature_summary(np.array(traj.temperature_K)[prod], self.temperature_K,
                                          self.temperature_tolerance_K, self.n_blocks))
        result["rdf"] = None
        if system.pbc.all() and len(pos_prod):
            rmax = min(self.rdf_rmax, max_rdf_radius(system))
            g, r = get_rdf(wrapped_frames(system, pos_prod), rmax, self.rdf_nbins)
            result["rdf"] = {"r_A": r, "g": g}
            result.update(oo_rdf(system, pos_prod, rmax, self.rdf_nbins, self.n_blocks))
        else:
            result.update({"rdf_OO": None, "rdf_OO_reason": "not periodic in 3D" if len(pos_prod) else "no production samples"})

        mask, label = species_mask(system, self.diffusion_species)
        rel = remove_com(pos_prod, system.get_masses())[:, mask] if len(pos_prod) else np.zeros((0, int(mask.sum()), 3))
        lag, msd = msd_curve(t_prod, rel)
        result["msd"] = {"lag_fs": lag, "msd_A2": msd, "atoms": label}
        result.update(diffusion_result(t_prod, rel, (0, 1, 2), self.diffusion_min_lag_fs, self.diffusion_window_fs,
                                       "diffusion", label))
        D = result["diffusion_A2_per_ps"]
        result["diffusion_cm2_per_s"] = None if D is None else D * 1e-4
        result.update(npt_density(traj, system, self.npt_discard_steps * self.timestep_fs, self.n_blocks))
        result.update(self._nve(traj, times, phases, etot, n))
        return result

    @staticmethod
    def _nve(traj: Trajectory, times, phases, etot, n) -> dict[str, Any]:
        nve = phases == "nve"
        if not traj.verdict["stable"] or nve.sum() < 3:
            return {"nve_drift_meV_per_atom_per_ps": None, "nve_fluctuation_meV_per_atom": None,
                    "nve_max_deviation_meV_per_atom": None}
        t_ps = times[nve] / 1000.0
        e = etot[nve] / n * 1000.0  # meV/atom
        return {"nve_drift_meV_per_atom_per_ps": float(np.polyfit(t_ps - t_ps[0], e, 1)[0]),
                "nve_fluctuation_meV_per_atom": float(np.std(e)),
                "nve_max_deviation_meV_per_atom": float(np.abs(e - e[0]).max())}

    def artefacts(self, result: dict[str, Any]) -> dict[str, Any]:
        """rdf.png (all pairs and O-O) and msd.png, where the run has them."""
        from optbench.properties.plots import curves_figure

        files = {}
        if result.get("rdf"):
            curves = {"g(r), all pairs": np.asarray(result["rdf"]["g"])}
            if result.get("rdf_OO"):
                curves["g_OO(r)"] = np.asarray(result["rdf_OO"]["g"])
            files["rdf.png"] = curves_figure(result["rdf"]["r_A"], curves, "r (Å)", "g(r)")
        if len(result["msd"]["lag_fs"]):
            files["msd.png"] = curves_figure(result["msd"]["lag_fs"], {"MSD": np.asarray(result["msd"]["msd_A2"])},
                                             "lag (fs)", "MSD (Å$^2$)")
        return files

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """Errors of the scalar observables with their combined statistical error and whether the
        difference is resolved (> 2 sigma); O-O RDF difference (mean |g - g_ref| on the common r grid)."""
        out: dict[str, Any] = compare_observables(result, reference, OBSERVABLES)
        ra, rb = result.get("rdf_OO"), reference.get("rdf_OO")
        if ra and rb:
            r = np.asarray(ra["r_A"], float)
            mask = r <= min(r.max(), float(np.max(rb["r_A"])))
            g_ref = np.interp(r[mask], np.asarray(rb["r_A"], float), np.asarray(rb["g"], float))
            out["rdf_OO_mean_abs_diff"] = float(np.abs(np.asarray(ra["g"], float)[mask] - g_ref).mean())
        out["stable_model"] = bool(result.get("stable"))
        out["stable_reference"] = bool(reference.get("stable"))
        return out
