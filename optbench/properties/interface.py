"""Interfacial dynamics of a slab: density profile along the normal, 10-90 width, lateral diffusion."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ase import Atoms
from scipy.ndimage import gaussian_filter1d

from optbench.errors import InputError
from optbench.properties.base import require
from optbench.properties.dynamics import (
    Phase,
    Trajectory,
    run_md,
)
from optbench.properties.observables import (
    AMU_PER_A3_TO_G_PER_CM3,
    DynamicsSettings,
    compare_observables,
    diffusion_result,
    equilibration_criterion,
    production_mask,
    run_record,
    species_mask,
    temperature_summary,
)
from optbench.properties.statistics import msd_curve, remove_com

OBSERVABLES = ("temperature_mean_K", "width_A", "bulk_density_g_cm3", "lateral_diffusion_A2_per_ps")


def centred_fractions(frac: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Fractional coordinates along the normal (T, N) shifted per frame so that the circular centre
    of mass sits at 0.5, wrapped into [0, 1)."""
    theta = 2 * np.pi * frac
    centre = np.arctan2((masses * np.sin(theta)).sum(axis=1), (masses * np.cos(theta)).sum(axis=1)) / (2 * np.pi)
    return np.mod(frac - centre[:, None] + 0.5, 1.0)


def crossing(z: np.ndarray, rho: np.ndarray, level: float, start: int, step: int) -> float | None:
    """z where `rho` first rises to `level`, walking from index `start` (the dilute side) by `step`,
    linearly interpolated; None when it never does."""
    i = start
    while 0 <= i + step < len(rho):
        j = i + step
        if rho[i] < level <= rho[j]:
            return float(z[i] + (z[j] - z[i]) * (level - rho[i]) / (rho[j] - rho[i]))
        i = j
    return None


def interface_widths(z: np.ndarray, rho: np.ndarray) -> dict[str, Any]:
    """10-90 widths (Å) of both interfaces of a centred slab profile (dense phase in the middle of
    `z`, dilute phase at both ends), the bulk and dilute densities, and the 50 % positions.

    Each crossing is the outermost one (walking in from the dilute side), so the layering of a
    solid slab does not count as interfaces."""
    mid = 0.5 * (rho.max() + rho.min())
    hi, lo = float(np.median(rho[rho > mid])), float(np.median(rho[rho <= mid]))
    for _ in range(2):  # bulk density: mean over the central half of the dense phase (averages out layering)
        sides = _sides(z, rho, hi, lo)
        z_lo, z_hi = sides["lower"]["z50_A"], sides["upper"]["z50_A"]
        if z_lo is None or z_hi is None or z_hi <= z_lo:
            break
        quarter = 0.25 * (z_hi - z_lo)
        inner = (z >= z_lo + quarter) & (z <= z_hi - quarter)
        if inner.any():
            hi = float(rho[inner].mean())
    sides = _sides(z, rho, hi, lo)
    widths = [s["width_A"] for s in sides.values() if s["width_A"] is not None]
    return {"bulk_density": hi, "low_density": lo, "sides": sides,
            "width_A": float(np.mean(widths)) if widths else None}


def _sides(z: np.ndarray, rho: np.ndarray, hi: float, lo: float) -> dict[str, dict]:
    delta = hi - lo
    sides = {}
    for side, start, step in (("lower", 0, 1), ("upper", len(rho) - 1, -1)):
        z10, z50, z90 = (crossing(z, rho, lo + f * delta, start, step) for f in (0.1, 0.5, 0.9))
        width = None if z90 is None or z10 is None else abs(z90 - z10)
        sides[side] = {"width_A": width, "z50_A": z50}
    return sides


@dataclasses.dataclass
class Interface(DynamicsSettings):
    """Slab run: equilibration (Langevin NVT until the temperature is stable), then weak-friction
    production NVT: mass-density profile along the normal, 10-90 interface width, lateral diffusion
    of the interfacial layer.

    Result: "equilibration", "equilibrated", "temperature_mean_K" (+ "_err", "temperature_ok",
    "temperature_flag") as in MD; "profile" ("z_A" from the slab centre of mass, "density_g_cm3"
    time-averaged and smoothed, "density_g_cm3_err" per bin), "width_A" (mean 10-90 width of both
    interfaces), "widths_A" per side, "interfaces_z_A" (50 % positions), "bulk_density_g_cm3",
    "low_density_g_cm3", "layer_atoms" (`diffusion_species` atoms within `layer_width`/2 of an interface
    at the start), "lateral_msd" ("lag_fs", "msd_A2"), "lateral_diffusion_A2_per_ps" of the layer and of
    all `diffusion_species` atoms ("lateral_diffusion_all_A2_per_ps"): in-plane MSD fitted over lags
    [`diffusion_min_lag_fs`, + `diffusion_window_fs`], None with "<key>_reason" when the run is shorter
    than twice the largest lag or the MSD is not diffusive; "stable", "verdict", "failure",
    "failed_at_step" (as in MD). Every `<key>_err` is one standard error from `n_blocks` block averages
    (diffusion: atoms as blocks). The density of the slab's dense phase is a result here (vacuum
    lets the film find it), unlike the density of an NVT box.
    """

    name = "interface"
    axis: int = 2  # normal direction (Cartesian and lattice axis)
    bin_width: float = 0.25  # Å
    smoothing: float = 0.5  # Å, Gaussian sigma of the profile
    layer_width: float = 3.0  # Å, thickness of the interfacial layer centred on each 50 % position

    def validate(self) -> None:
        require(self.axis in (0, 1, 2), "axis", f"must be 0, 1 or 2 (x, y, z), got {self.axis}")
        super().validate()
        require(self.bin_width > 0, "bin_width", f"must be > 0 Å, got {self.bin_width}")
        require(self.smoothing >= 0, "smoothing", f"must be >= 0 Å, got {self.smoothing}")
        require(self.layer_width > 0, "layer_width", f"must be > 0 Å, got {self.layer_width}")

    def _check(self, atoms: Atoms) -> float:
        """Height (Å) of the cell along the normal; InputError when the cell is not a slab cell."""
        if atoms.cell.rank < 3 or not atoms.pbc[[i for i in range(3) if i != self.axis]].all():
            raise InputError("interface needs a 3D cell periodic in the plane of the slab", field="pbc")
        cell = atoms.cell.array
        lateral = [i for i in range(3) if i != self.axis]
        if np.abs(cell[lateral, self.axis]).max() > 1e-6:
            raise InputError(f"in-plane cell vectors must have no component along axis {self.axis}", field="cell")
        return float(atoms.get_volume() / np.linalg.norm(np.cross(cell[lateral[0]], cell[lateral[1]])))

    def prepare(self, atoms: Atoms) -> Atoms:
        """The slab as simulated: checked, periodic in all three directions."""
        self._check(atoms)
        system = atoms.copy()
        system.pbc = True
        return system

    def run(self, system: Atoms, calculator, on_sample=None) -> Trajectory:
        """Equilibration (until the temperature is stable) then production NVT of the prepared slab."""
        phases = [Phase("equil", self.equilibration_steps), Phase("nvt", self.nvt_steps, self.production_friction_per_fs)]
        return run_md(system, calculator, [p for p in phases if p.steps > 0], temperature_K=self.temperature_K,
                      timestep_fs=self.timestep_fs, friction_per_fs=self.friction_per_fs, seed=self.seed,
                      sample_every=self.sample_every, limits=self.limits(), progress=self.progress,
                      desc="interface md", equilibration=equilibration_criterion(self),
                      on_sample=on_sample)

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        system = self.prepare(atoms)
        return self.analyse(self.run(system, calculator), system)

    def analyse(self, traj: Trajectory, system: Atoms) -> dict[str, Any]:
        """Every observable of a finished run."""
        height = self._check(system)
        phases = np.array(traj.phases)
        prod = production_mask(phases)
        times, pos = np.array(traj.times_fs)[prod], np.array(traj.positions)[prod]
        result: dict[str, Any] = run_record(self, traj, len(system))
        result["production_fs"] = float(times[-1] - times[0]) if len(times) > 1 else 0.0
        result.update(temperature_summary(np.array(traj.temperature_K)[prod], self.temperature_K,
                                          self.temperature_tolerance_K, self.n_blocks))
        if len(pos) == 0:
            result.update({"profile": None, "width_A": None, "lateral_diffusion_A2_per_ps": None,
                           "lateral_diffusion_A2_per_ps_reason": "no production samples"})
            return result
        masses = system.get_masses()
        frac = centred_fractions((pos @ np.linalg.inv(system.cell.array))[:, :, self.axis], masses)
        z, rho, rho_err, w, blocks = self._profile(frac, masses, system.get_volume(), height)
        result.update({
            "profile": {"z_A": z, "density_g_cm3": rho, "density_g_cm3_err": rho_err},
            "width_A": w["width_A"],
            "widths_A": {k: v["width_A"] for k, v in w["sides"].items()},
            "interfaces_z_A": {k: v["z50_A"] for k, v in w["sides"].items()},
            "bulk_density_g_cm3": w["bulk_density"],
            "low_density_g_cm3": w["low_density"],
        })
        for key, field in (("width_A", "width_A"), ("bulk_density_g_cm3", "bulk_density")):
            vals = [b[field] for b in blocks if b[field] is not None]
            result[f"{key}_err"] = float(np.std(vals, ddof=1) / np.sqrt(len(vals))) if len(vals) >= 2 else None
        mask, label = species_mask(system, self.diffusion_species)
        z0 = (frac[0] - 0.5) * height
        layer = np.zeros(len(system), bool)
        for zi in (v for v in result["interfaces_z_A"].values() if v is not None):
            layer |= np.abs(z0 - zi) <= self.layer_width / 2
        layer &= mask
        lateral = [i for i in range(3) if i != self.axis]
        rel = remove_com(pos, masses)
        lag, msd = msd_curve(times, rel[:, layer], dims=lateral)
        result["layer_atoms"] = int(layer.sum())
        result["lateral_msd"] = {"lag_fs": lag, "msd_A2": msd, "atoms": f"{label} within {self.layer_width / 2:g} Å of an interface"}
        fit = (self.diffusion_min_lag_fs, self.diffusion_window_fs)
        result.update(diffusion_result(times, rel[:, layer], lateral, *fit, "lateral_diffusion", f"{label} (interfacial layer)"))
        result.update(diffusion_result(times, rel[:, mask], lateral, *fit, "lateral_diffusion_all", label))
        return result

    def _profile(self, frac: np.ndarray, masses: np.ndarray, volume: float, height: float):
        """Smoothed mass-density profile (g/cm^3) on z (Å), its block error per bin, the widths of the
        mean profile and those of each block's profile."""
        n_bins = max(8, int(round(height / self.bin_width)))
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        hists = np.array([np.histogram(f, bins=edges, weights=masses)[0] for f in frac])
        scale = AMU_PER_A3_TO_G_PER_CM3 / (volume / n_bins)
        sigma = self.smoothing / (height / n_bins)
        z = (0.5 * (edges[:-1] + edges[1:]) - 0.5) * height
        rho = gaussian_filter1d(hists.mean(axis=0) * scale, sigma, mode="wrap")
        chunks = np.array_split(hists, self.n_blocks) if len(hists) >= 2 * self.n_blocks else []
        block_rho = [gaussian_filter1d(c.mean(axis=0) * scale, sigma, mode="wrap") for c in chunks]
        blocks = [interface_widths(z, b) for b in block_rho]
        blocks = [{"width_A": b["width_A"], "bulk_density": b["bulk_density"]} for b in blocks]
        err = np.std(block_rho, axis=0, ddof=1) / np.sqrt(len(block_rho)) if block_rho else None
        return z, rho, err, interface_widths(z, rho), blocks

    def artefacts(self, result: dict[str, Any]) -> dict[str, Any]:
        """density_profile.png, where the run has a profile."""
        from optbench.properties.plots import curves_figure

        if not result.get("profile"):
            return {}
        return {"density_profile.png": curves_figure(
            result["profile"]["z_A"], {"density": np.asarray(result["profile"]["density_g_cm3"])},
            "z from slab centre (Å)", "density (g/cm$^3$)")}

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """Profile L1 difference (relative to the reference's integral); width, bulk density, lateral
        diffusion and temperature errors with their combined statistical error and "resolved"."""
        out: dict[str, Any] = compare_observables(result, reference, OBSERVABLES)
        pa, pb = result.get("profile"), reference.get("profile")
        if pa and pb:
            z = np.asarray(pa["z_A"], float)
            zb = np.asarray(pb["z_A"], float)
            rb = np.interp(z, zb, np.asarray(pb["density_g_cm3"], float), left=0.0, right=0.0)
            ra = np.asarray(pa["density_g_cm3"], float)
            out["profile_L1"] = float(np.abs(ra - rb).sum() / max(rb.sum(), 1e-12))
        out["stable_model"] = bool(result.get("stable"))
        out["stable_reference"] = bool(reference.get("stable"))
        return out
