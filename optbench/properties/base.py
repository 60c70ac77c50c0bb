"""Shared pieces of the property objects: settings, relaxation, result comparison."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from optbench.data.sampling import bfgs_relax as relax  # noqa: F401  (the one relaxer; properties import it from here)
from optbench.errors import InputError


@dataclasses.dataclass
class Property:
    """One physical property: settings in the constructor, `calc(atoms, calculator) -> dict`.

    Subclasses are dataclasses whose fields are the settings; `calc` returns plain numbers
    and arrays (JSON-serialisable) and always includes `"settings"`, so a result (for example
    a reference value in a dataset manifest) says how to recompute it.
    """

    name: ClassVar[str] = "property"

    def settings(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_settings(cls, settings: dict[str, Any] | None) -> Property:
        """Build the object from a settings dict (unknown keys -> InputError)."""
        settings = dict(settings or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(f"unknown {cls.name} setting(s): {', '.join(unknown)}", field="settings")
        return cls(**settings)

    def calc(self, atoms: Atoms, calculator, out: str | Path | None = None) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        raise NotImplementedError


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def is_periodic_3d(atoms: Atoms) -> bool:
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def require_periodic_3d(atoms: Atoms, needs: str) -> None:
    """InputError '<needs> a structure periodic in 3D' (field pbc) unless `atoms` is one."""
    if not is_periodic_3d(atoms):
        raise InputError(f"{needs} a structure periodic in 3D", field="pbc")


def attach(atoms: Atoms, calculator) -> Atoms:
    """A copy of `atoms` (no constraints kept) with `calculator` attached."""
    atoms = atoms.copy()
    atoms.calc = calculator
    return atoms


def scalar_errors(result: dict, reference: dict, keys) -> dict[str, dict[str, float]]:
    """{key: {"model", "reference", "abs", "rel"}} for each key that both dicts hold as a number."""
    out = {}
    for key in keys:
        a, b = result.get(key), reference.get(key)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or isinstance(a, bool):
            continue
        err = float(a) - float(b)
        out[key] = {
            "model": float(a),
            "reference": float(b),
            "abs": abs(err),
            "rel": abs(err) / abs(b) if b != 0 else None,
        }
    return out
