"""A toy property, as a user would add one: this file plus one registry line
(`register_property(MaxForce)`, or an entry in optbench.properties.PROPERTIES)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ase import Atoms

from optbench.properties.base import Property, attach, require, scalar_errors


@dataclasses.dataclass
class MaxForce(Property):
    """The largest force on an atom (eV/Å) once the structure is rattled by `rattle_A` (seeded)."""

    name = "max_force"
    rattle_A: float = 0.05
    seed: int = 0

    def validate(self) -> None:
        require(self.rattle_A >= 0, "rattle_A", f"must be >= 0 Å, got {self.rattle_A}")

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        rattled = attach(atoms, calculator)
        rattled.rattle(self.rattle_A, seed=self.seed)
        forces = rattled.get_forces()
        return {"settings": self.settings(), "max_force_eV_A": float(np.linalg.norm(forces, axis=1).max())}

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        return scalar_errors(result, reference, ("max_force_eV_A",))
