"""Equation of state: Birch-Murnaghan fit of energy against volume."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ase import Atoms
from ase.eos import EquationOfState
from ase.units import GPa
from tqdm.auto import tqdm

from optbench.progress import hidden
from optbench.properties.base import (
    Property,
    attach,
    relax,
    require,
    require_periodic_3d,
    scalar_errors,
)


@dataclasses.dataclass
class EOS(Property):
    """Birch-Murnaghan E(V) fit over isotropically scaled copies of the relaxed cell.

    Result: "V0_A3" (cell volume, Å^3) and "V0_per_atom_A3", "E0_eV" and "E0_per_atom_eV",
    "B0_GPa", "B0_prime" (dimensionless), "fit_rms_meV_per_atom" (fit residual), the sampled
    "volumes_A3" and "energies_eV", "relax" (converged, steps, fmax eV/Å).
    """

    name = "eos"
    volume_range: float = 0.06  # sample V0 * (1 - r) .. V0 * (1 + r)
    n_points: int = 9
    relax_cell: bool = True
    relax_ions: bool = True  # relax internal coordinates at each volume
    fmax: float = 0.005  # eV/Å
    relax_steps: int = 200
    progress: bool = True

    def validate(self) -> None:
        require(self.n_points >= 5, "n_points", f"need at least 5 volumes for a 4-parameter fit, got {self.n_points}")
        require(0 < self.volume_range < 1, "volume_range", f"must be in (0, 1), got {self.volume_range}")
        require(self.fmax > 0, "fmax", f"must be > 0 eV/Å, got {self.fmax}")
        require(self.relax_steps >= 0, "relax_steps", f"must be >= 0, got {self.relax_steps}")

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        require_periodic_3d(atoms, "an equation of state needs")
        base = attach(atoms, calculator)
        relax_info = relax(base, cell=self.relax_cell, fmax=self.fmax, steps=self.relax_steps if self.relax_cell else 0)
        cell0 = base.get_cell().array.copy()
        factors = np.linspace(1 - self.volume_range, 1 + self.volume_range, self.n_points)
        volumes, energies = [], []
        for f in tqdm(factors, desc="eos volumes", disable=hidden(self.progress), leave=False):
            scaled = base.copy()
            scaled.calc = calculator
            scaled.set_cell(cell0 * f ** (1 / 3), scale_atoms=True)
            if self.relax_ions:
                relax(scaled, cell=False, fmax=self.fmax, steps=self.relax_steps)
            volumes.append(scaled.get_volume())
            energies.append(scaled.get_potential_energy())
        volumes, energies = np.array(volumes), np.array(energies)
        eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
        v0, e0, b0 = eos.fit(warn=False)
        b0_prime = float(eos.eos_parameters[2])
        fit = eos.func(volumes, *eos.eos_parameters)
        n = len(base)
        return {
            "settings": self.settings(),
            "V0_A3": float(v0),
            "V0_per_atom_A3": float(v0) / n,
            "E0_eV": float(e0),
            "E0_per_atom_eV": float(e0) / n,
            "B0_GPa": float(b0 / GPa),
            "B0_prime": b0_prime,
            "fit_rms_meV_per_atom": float(np.sqrt(np.mean((energies - fit) ** 2)) / n * 1000),
            "volumes_A3": volumes,
            "energies_eV": energies,
            "n_atoms": n,
            "relax": relax_info,
        }

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """Absolute and relative errors of V0 per atom (Å^3), B0 (GPa) and B0'."""
        return scalar_errors(result, reference, ["V0_per_atom_A3", "B0_GPa", "B0_prime"])
