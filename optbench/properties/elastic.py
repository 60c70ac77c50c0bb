"""Elastic tensor from stress-strain fits, with Voigt-Reuss-Hill moduli."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np
from ase import Atoms
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

# Voigt index -> tensor pair (0=xx, 1=yy, 2=zz, 3=yz, 4=xz, 5=xy)
_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def voigt_strain_matrix(j: int, value: float) -> np.ndarray:
    """Symmetric 3x3 strain for Voigt component j; shear values are engineering strains (2 eps_ij)."""
    eps = np.zeros((3, 3))
    a, b = _VOIGT[j]
    if a == b:
        eps[a, a] = value
    else:
        eps[a, b] = eps[b, a] = value / 2
    return eps


def vrh_moduli(C: np.ndarray) -> dict[str, float]:
    """Voigt, Reuss and Hill bulk (K) and shear (G) moduli of a 6x6 tensor, same units as C."""
    S = np.linalg.inv(C)
    kv = (C[0, 0] + C[1, 1] + C[2, 2] + 2 * (C[0, 1] + C[1, 2] + C[0, 2])) / 9
    gv = (C[0, 0] + C[1, 1] + C[2, 2] - (C[0, 1] + C[1, 2] + C[0, 2]) + 3 * (C[3, 3] + C[4, 4] + C[5, 5])) / 15
    kr = 1 / (S[0, 0] + S[1, 1] + S[2, 2] + 2 * (S[0, 1] + S[1, 2] + S[0, 2]))
    gr = 15 / (4 * (S[0, 0] + S[1, 1] + S[2, 2]) - 4 * (S[0, 1] + S[1, 2] + S[0, 2]) + 3 * (S[3, 3] + S[4, 4] + S[5, 5]))
    return {
        "K_V": float(kv), "K_R": float(kr), "K_VRH": float((kv + kr) / 2),
        "G_V": float(gv), "G_R": float(gr), "G_VRH": float((gv + gr) / 2),
    }


@dataclasses.dataclass
class Elastic(Property):
    """Full 6x6 elastic tensor (GPa) from linear stress-strain fits after a full relaxation.

    Result: "C_GPa" (6x6, symmetrised, Voigt order xx,yy,zz,yz,xz,xy), "C_raw_GPa" (as fitted),
    "asymmetry_GPa" (max |C_ij - C_ji| / 2) and "asymmetry_rel" (over max |C|), named entries
    "C11", "C12", "C13", "C33", "C44", "C66" (GPa), Voigt/Reuss/Hill moduli "K_V", "K_R", "K_VRH",
    "G_V", "G_R", "G_VRH" (GPa), "eigenvalues_GPa", "positive_definite", "fit_residual_GPa"
    (RMS of the linear fits), "volume_A3" of the relaxed cell, "relax" (converged, steps, fmax eV/Å).
    Normal strains are tensor strains; shear strains are engineering (Voigt) strains.
    """

    name = "elastic"
    normal_strains: tuple[float, ...] = (-0.01, -0.005, 0.005, 0.01)
    shear_strains: tuple[float, ...] = (-0.02, -0.01, 0.01, 0.02)
    relax_cell: bool = True
    relax_ions: bool = True  # relax internal coordinates at each strain (needed for C44 of Si)
    fmax: float = 0.005  # eV/Å
    relax_steps: int = 200
    progress: bool = True

    def validate(self) -> None:
        for label, strains in (("normal_strains", self.normal_strains), ("shear_strains", self.shear_strains)):
            require(all(isinstance(s, numbers.Real) and not isinstance(s, bool) for s in strains), label,
                    f"strains must be numbers, got {list(strains)}")
            require(len(set(strains)) >= 2, label, f"need at least two distinct strain values, got {list(strains)}")
        require(self.fmax > 0, "fmax", f"must be > 0 eV/Å, got {self.fmax}")
        require(self.relax_steps >= 0, "relax_steps", f"must be >= 0, got {self.relax_steps}")

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        require_periodic_3d(atoms, "elastic constants need")
        base = attach(atoms, calculator)
        relax_info = relax(base, cell=self.relax_cell, fmax=self.fmax, steps=self.relax_steps if self.relax_cell or self.relax_ions else 0)
        cell0 = base.get_cell().array.copy()
        stress0 = base.get_stress(voigt=True)
        C = np.zeros((6, 6))
        residuals = []
        jobs = [(j, s) for j in range(6) for s in (self.normal_strains if j < 3 else self.shear_strains)]
        stresses: dict[int, list] = {j: [] for j in range(6)}
        for j, value in tqdm(jobs, desc="elastic strains", disable=hidden(self.progress), leave=False):
            strained = base.copy()
            strained.calc = calculator
            strained.set_cell(cell0 @ (np.eye(3) + voigt_strain_matrix(j, value)), scale_atoms=True)
            if self.relax_ions:
                relax(strained, cell=False, fmax=self.fmax, steps=self.relax_steps)
            stresses[j].append(strained.get_stress(voigt=True))
        for j in range(6):
            strains = np.array(self.normal_strains if j < 3 else self.shear_strains, dtype=float)
            sig = np.array(stresses[j]) / GPa  # (n, 6)
            design = np.stack([strains, np.ones_like(strains)], axis=1)
            coef, *_ = np.linalg.lstsq(design, sig, rcond=None)
            C[:, j] = coef[0]
            residuals.append(sig - design @ coef)
        C_sym = (C + C.T) / 2
        asym = float(np.abs(C - C.T).max() / 2)
        eig = np.linalg.eigvalsh(C_sym)
        result: dict[str, Any] = {
            "settings": self.settings(),
            "C_GPa": C_sym,
            "C_raw_GPa": C,
            "asymmetry_GPa": asym,
            "asymmetry_rel": asym / float(np.abs(C).max()) if np.abs(C).max() > 0 else 0.0,
            "eigenvalues_GPa": eig,
            "positive_definite": bool(eig.min() > 0),
            "fit_residual_GPa": float(np.sqrt(np.mean(np.concatenate(residuals) ** 2))),
            "residual_stress_GPa": stress0 / GPa,
            "volume_A3": float(base.get_volume()),
            "n_atoms": len(base),
            "relax": relax_info,
        }
        for name, (i, j) in {"C11": (0, 0), "C12": (0, 1), "C13": (0, 2), "C33": (2, 2), "C44": (3, 3), "C66": (5, 5)}.items():
            result[name] = float(C_sym[i, j])
        try:
            result.update(vrh_moduli(C_sym))
        except np.linalg.LinAlgError:
            result.update(dict.fromkeys(["K_V", "K_R", "K_VRH", "G_V", "G_R", "G_VRH"]))
        return result

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """Absolute (GPa) and relative errors of C11, C12, C44, K_VRH, G_VRH and the tensor's MAE."""
        out: dict[str, Any] = scalar_errors(result, reference, ["C11", "C12", "C13", "C33", "C44", "C66", "K_VRH", "G_VRH"])
        if result.get("C_GPa") is not None and reference.get("C_GPa") is not None:
            diff = np.asarray(result["C_GPa"], float) - np.asarray(reference["C_GPa"], float)
            out["C_MAE_GPa"] = float(np.abs(diff).mean())
        return out
