"""Shared pieces of the property objects: settings, relaxation, result comparison."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from optbench.data.sampling import bfgs_relax as relax  # noqa: F401  (the one relaxer; properties import it from here)
from optbench.errors import InputError


@dataclasses.dataclass
class Property:
    """One physical property: settings in the constructor, `calc(atoms, calculator) -> dict`.

    Subclasses are dataclasses whose fields are the settings, checked when the object is built
    (a bad one raises InputError naming the field); `calc` returns plain numbers and arrays
    (JSON-serialisable) and always includes `"settings"`, so a result (for example a reference
    value in a dataset manifest) says how to recompute it. `calc` never writes files: those a
    property offers (figures, phonopy's band.yaml) come from `calc_with_artefacts` as named
    artefacts, and the caller writes them (`optbench.io.write_artefacts`).
    """

    name: ClassVar[str] = "property"

    def __post_init__(self) -> None:
        check_types(self)
        self.validate()

    def validate(self) -> None:
        """Range checks of the settings (subclasses); raise InputError naming the field."""

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

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        raise NotImplementedError

    def artefacts(self, result: dict[str, Any]) -> dict[str, Any]:
        """Files derived from a result: {file name: matplotlib Figure, str or bytes}; none by default."""
        return {}

    def calc_with_artefacts(self, atoms: Atoms, calculator) -> tuple[dict[str, Any], dict[str, Any]]:
        """`calc`'s result and the named files that go with it (for the caller to write)."""
        result = self.calc(atoms, calculator)
        return result, self.artefacts(result)

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        raise NotImplementedError


def require(ok: bool, field: str, message: str) -> None:
    """InputError naming the setting `field` unless `ok`."""
    if not ok:
        raise InputError(message, field=field)


def check_types(prop: Property) -> None:
    """Each setting has the kind of its default: bool, whole number, number or sequence (None
    only where the field allows it; a list from JSON becomes the tuple); InputError naming the
    first field that does not."""
    for f in dataclasses.fields(prop):
        value, default = getattr(prop, f.name), f.default
        if value is None and (default is None or "None" in str(f.type)):
            continue
        if isinstance(default, bool):
            ok, kind = isinstance(value, (bool, np.bool_)), "true or false"
        elif isinstance(default, numbers.Integral):
            ok, kind = isinstance(value, numbers.Integral) and not isinstance(value, bool), "a whole number"
        elif isinstance(default, numbers.Real):
            ok, kind = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
        elif isinstance(default, tuple):
            ok, kind = isinstance(value, (tuple, list, np.ndarray)), "a list"
            if ok:
                setattr(prop, f.name, tuple(value))
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        else:
            continue
        require(ok, f.name, f"must be {kind}, got {value!r}")


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
