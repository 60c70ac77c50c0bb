"""The offline reference method: build an ASE calculator from a manifest's "reference" block."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from optbench.errors import BackboneError, InputError

XTB_METHODS = ("GFN2-xTB", "GFN1-xTB")

# Every setting that changes a label; written in full into each manifest.
XTB_DEFAULTS = {
    "accuracy": 0.01,
    "electronic_temperature": 300.0,
    "charge": 0,
    "multiplicity": 1,
    "max_iterations": 500,
    "initial_guess": "sad",
    "mixer_damping": 0.4,
    "kpoints": "Gamma",
    "wavefunction_restart": False,
}
PYSCF_DEFAULTS = {"xc": "PBE", "basis": "def2-SVP", "charge": 0, "spin": 0, "conv_tol": 1e-11, "grid_level": 3}


def reference_block(method: str = "GFN2-xTB", **settings) -> dict:
    """The full "reference" block for a method name, with every label-relevant setting.
    "gpaw" or "DFT-<xc>" is plane-wave DFT with GPAW (see optbench.data.gpaw_ref)."""
    if method == "gpaw" or method.startswith("DFT-"):
        from optbench.data.gpaw_ref import gpaw_block

        xc = {"xc": method[4:]} if method.startswith("DFT-") else {}
        return gpaw_block(**{**xc, **settings})
    if method in XTB_METHODS:
        block = {"method": method, "code": "tblite", **XTB_DEFAULTS}
    elif method.startswith("pyscf"):
        block = {"method": method, "code": "pyscf", **PYSCF_DEFAULTS}
    else:
        raise InputError(f"unknown reference method '{method}' (use {', '.join(XTB_METHODS)}, gpaw or pyscf)",
                         field="reference.method")
    unknown = set(settings) - set(block)
    if unknown:
        raise InputError(f"unknown settings {sorted(unknown)} for {method}", field="reference")
    block.update(settings)
    return block


def make_calculator(reference: dict) -> Calculator:
    """ASE calculator (eV, eV/Å, eV/Å^3) for a manifest "reference" block; fresh state, no restart."""
    if not isinstance(reference, dict) or "method" not in reference:
        raise InputError("reference block must be a dict with a 'method'", field="reference.method")
    method = reference["method"]
    if reference.get("code") == "gpaw":
        return _gpaw(reference)
    if method in XTB_METHODS:
        return _tblite(reference)
    if str(method).startswith("pyscf"):
        return PySCFCalculator(**{k: reference[k] for k in PYSCF_DEFAULTS if k in reference})
    raise InputError(f"unknown reference method '{method}'", field="reference.method")


def _gpaw(ref: dict) -> Calculator:
    from optbench.data.gpaw_ref import GPAW_DEFAULTS, GPAWReference

    try:
        import gpaw  # noqa: F401
    except ImportError:
        raise InputError("gpaw is not installed: `make install` (or pip install 'optbench[reference]' with libxc-dev)",
                         field="reference.code") from None
    settings = {k: ref[k] for k in GPAW_DEFAULTS if k in ref}
    return GPAWReference(settings, reuse=bool(ref.get("wavefunction_restart", False)))


def _tblite(ref: dict) -> Calculator:
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise InputError("tblite is not installed: pip install 'optbench[reference]'", field="reference.method") from None
    s = {**XTB_DEFAULTS, **ref}
    calc = TBLite(
        method=ref["method"], accuracy=float(s["accuracy"]),
        electronic_temperature=float(s["electronic_temperature"]),
        charge=int(s["charge"]), multiplicity=int(s["multiplicity"]),
        max_iterations=int(s["max_iterations"]), guess=s["initial_guess"],
        mixer_damping=float(s["mixer_damping"]), verbosity=0,
    )
    if not s["wavefunction_restart"]:
        return _NoRestart(calc)
    return calc


class _NoRestart(Calculator):
    """Wraps TBLite so that every geometry starts from the same initial guess (labels independent of history)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.parameters = dict(inner.parameters)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.inner._res = None  # drop the previous wavefunction
        self.inner.calculate(self.atoms.copy(), ["energy", "forces"], all_changes)
        self.results = {k: self.inner.results[k] for k in ("energy", "free_energy", "forces")}
        if "stress" in self.inner.results:
            self.results["stress"] = np.array(self.inner.results["stress"])


class PySCFCalculator(Calculator):
    """Kohn-Sham DFT with pyscf for finite molecules: energy (eV) and forces (eV/Å)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, xc="PBE", basis="def2-SVP", charge=0, spin=0, conv_tol=1e-11, grid_level=3):
        super().__init__()
        self.settings = {"xc": xc, "basis": basis, "charge": charge, "spin": spin, "conv_tol": conv_tol, "grid_level": grid_level}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from ase.units import Bohr, Hartree
        from pyscf import dft, gto

        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise InputError("the pyscf reference handles finite molecules only (pbc must be False)", field="reference.method")
        s = self.settings
        mol = gto.M(
            atom=[(sym, pos) for sym, pos in zip(self.atoms.get_chemical_symbols(), self.atoms.positions)],
            unit="Angstrom", basis=s["basis"], charge=s["charge"], spin=s["spin"], verbose=0,
        )
        mf = dft.RKS(mol) if s["spin"] == 0 else dft.UKS(mol)
        mf.xc, mf.conv_tol = s["xc"], s["conv_tol"]
        mf.grids.level = s["grid_level"]
        energy = mf.kernel()
        if not mf.converged:
            raise BackboneError(f"pyscf SCF did not converge ({s['xc']}/{s['basis']}, conv_tol {s['conv_tol']:g})")
        grad = mf.nuc_grad_method().kernel()
        self.results = {"energy": energy * Hartree, "free_energy": energy * Hartree, "forces": -grad * Hartree / Bohr}
