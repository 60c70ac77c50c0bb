"""The regimes of the built-in suite, one `Regime` entry each: the single source of their names.

A regime is its name, its reference method, a one-line description, its sampling recipe (the
structures, the jobs that produce its splits, its reference properties per size; see
optbench.data.recipe) and the folder of its shipped `--size small` dataset. The data layer
(generation, `optbench data list`, `suite_path`), the study config and the CLI read the names
from here. Importing this module imports nothing heavy (the CLI lists the names from it).

To add a regime: a recipe (a `Recipe` in a module of its own, like those in
optbench/data/recipes/) and one `register_regime(Regime(...))` line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from optbench.errors import InputError

SUITE_DIR = Path(__file__).resolve().parent / "suite"


@dataclass(frozen=True)
class Regime:
    name: str
    method: str  # reference method of its data (optbench.data.reference.reference_block)
    description: str  # one line, shown by `optbench data list` before the data exist
    recipe: str  # "module:ATTR" of its sampling recipe (an optbench.data.recipe.Recipe)
    folder: Path | None = None  # its shipped --size small dataset; None: optbench/suite/<name>

    def path(self) -> Path:
        """Folder of the shipped `--size small` dataset (holds manifest.json)."""
        return SUITE_DIR / self.name if self.folder is None else Path(self.folder)

    def load_recipe(self):
        """The sampling recipe (imported on first use: it pulls in ASE and the reference codes)."""
        module, attr = self.recipe.split(":", 1)
        return getattr(importlib.import_module(module), attr)


REGIMES: dict[str, Regime] = {}


def register_regime(regime: Regime) -> None:
    """Add (or replace) a regime under `regime.name`."""
    REGIMES[regime.name] = regime


def unregister_regime(name: str) -> None:
    """Remove the regime `name` (a test's toy entry, for instance)."""
    REGIMES.pop(name, None)


def regime_names() -> tuple[str, ...]:
    return tuple(REGIMES)


def get_regime(name: str) -> Regime:
    """The registry entry `name`; InputError naming the known regimes otherwise."""
    if name not in REGIMES:
        raise InputError(f"unknown regime '{name}' (choose from {', '.join(REGIMES)})", field="regime")
    return REGIMES[name]


for _regime in (
    Regime("molecular", "GFN2-xTB", "ethanol, malonaldehyde, butane; GFN2-xTB", "optbench.data.recipes.molecular:MOLECULAR"),
    Regime("crystal", "DFT-PBEsol",
           "Si (diamond), NaCl (rocksalt, CsCl polymorph), Al (fcc); plane-wave DFT PBEsol (GPAW)",
           "optbench.data.recipes.crystal:CRYSTAL"),
    Regime("liquid", "GFN1-xTB", "16-molecule water box; GFN1-xTB", "optbench.data.recipes.water:LIQUID"),
    Regime("interface", "GFN1-xTB", "water film with vacuum (liquid/vapour); GFN1-xTB", "optbench.data.recipes.water:INTERFACE"),
):
    register_regime(_regime)

BUILTIN_REGIMES = regime_names()  # the four shipped regimes, in order (the paper study runs them all)
