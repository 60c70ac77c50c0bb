"""Molecular normal-mode frequencies from ASE's finite-difference vibrations."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.vibrations import Vibrations as AseVibrations

from optbench.properties.base import Property, attach, relax, require


def is_linear(atoms: Atoms, tol: float = 1e-3) -> bool:
    """True for a linear molecule (all atoms on one line)."""
    if len(atoms) < 3:
        return True
    pos = atoms.get_positions() - atoms.get_positions().mean(axis=0)
    sv = np.linalg.svd(pos, compute_uv=False)
    return bool(sv[1] < tol * max(sv[0], 1e-12))


def signed_frequencies(freqs: np.ndarray) -> np.ndarray:
    """ASE's complex frequencies as real numbers, imaginary ones negative (cm^-1)."""
    freqs = np.asarray(freqs)
    return np.where(np.abs(freqs.imag) > np.abs(freqs.real), -np.abs(freqs.imag), np.abs(freqs.real))


def internal_modes(freqs: np.ndarray, n_rigid: int) -> np.ndarray:
    """Drop the `n_rigid` modes of smallest magnitude (translations, rotations); sorted ascending."""
    order = np.argsort(np.abs(freqs))
    return np.sort(freqs[order[n_rigid:]])


def _or_empty(values):
    return [] if values is None else values


@dataclasses.dataclass
class Vibrations(Property):
    """Normal-mode frequencies (cm^-1) of a molecule after relaxation.

    Result: "frequencies_cm1" (the 3N-6 or 3N-5 internal modes, ascending; imaginary ones
    negative), "rigid_modes_cm1" (the dropped translations/rotations), "n_imaginary",
    "zero_point_energy_eV", "linear", "relax" (converged, steps, fmax eV/Å).
    """

    name = "vibrations"
    delta: float = 0.01  # Å finite-difference step
    nfree: int = 2  # 2 (central) or 4 points per coordinate
    relax_ions: bool = True
    fmax: float = 0.001  # eV/Å
    relax_steps: int = 500
    imaginary_tol: float = 20.0  # cm^-1; internal modes below -tol count as imaginary

    def validate(self) -> None:
        require(self.delta > 0, "delta", f"must be > 0 Å, got {self.delta}")
        require(self.nfree in (2, 4), "nfree", f"must be 2 or 4 points per coordinate, got {self.nfree}")
        require(self.fmax > 0, "fmax", f"must be > 0 eV/Å, got {self.fmax}")
        require(self.relax_steps >= 0, "relax_steps", f"must be >= 0, got {self.relax_steps}")

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        mol = attach(atoms, calculator)
        relax_info = relax(mol, cell=False, fmax=self.fmax, steps=self.relax_steps if self.relax_ions else 0)
        linear = is_linear(mol)
        with tempfile.TemporaryDirectory(prefix="optbench-vib-") as tmp:
            vib = AseVibrations(mol, name=str(Path(tmp) / "vib"), delta=self.delta, nfree=self.nfree)
            vib.run()
            data = vib.get_vibrations()
        freqs = signed_frequencies(data.get_frequencies())
        n_rigid = min(len(freqs), 5 if linear else 6) if len(mol) > 1 else len(freqs)
        modes = internal_modes(freqs, n_rigid)
        rigid = np.sort(freqs[np.argsort(np.abs(freqs))[:n_rigid]])
        zpe = 0.5 * float(np.sum(modes[modes > 0])) * units.invcm
        return {
            "settings": self.settings(),
            "frequencies_cm1": modes,
            "rigid_modes_cm1": rigid,
            "n_imaginary": int(np.sum(modes < -self.imaginary_tol)),
            "zero_point_energy_eV": zpe,
            "linear": linear,
            "n_atoms": len(mol),
            "relax": relax_info,
        }

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """Modes matched by frequency order: signed error per mode and MAE (cm^-1)."""
        a = np.sort(np.asarray(_or_empty(result.get("frequencies_cm1")), float))
        b = np.sort(np.asarray(_or_empty(reference.get("frequencies_cm1")), float))
        n = min(len(a), len(b))
        if n == 0:
            return {"per_mode_error_cm1": [], "MAE_cm1": None, "n_modes_model": len(a), "n_modes_reference": len(b)}
        err = a[:n] - b[:n]
        return {
            "per_mode_error_cm1": err.tolist(),
            "MAE_cm1": float(np.abs(err).mean()),
            "max_abs_error_cm1": float(np.abs(err).max()),
            "n_modes_model": len(a),
            "n_modes_reference": len(b),
        }
