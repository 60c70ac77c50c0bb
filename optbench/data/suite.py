"""The built-in suite's sampling recipes, importable from one place.

What a recipe is (`Recipe`, `Job`, the ID split) lives in optbench.data.recipe; each built-in
regime's recipe in a module of optbench.data.recipes; the regimes themselves (names, reference
methods, where their data ship) are entries of optbench.regimes, each pointing at its recipe."""

from __future__ import annotations

from optbench.data.recipe import ID_FRACTIONS, SIZES, Job, Recipe, reference_for, split_id
from optbench.data.recipes.crystal import CRYSTAL, CRYSTALS
from optbench.data.recipes.molecular import MOLECULAR, MOLECULES
from optbench.data.recipes.water import INTERFACE, LIQUID

__all__ = ["CRYSTAL", "CRYSTALS", "ID_FRACTIONS", "INTERFACE", "LIQUID", "MOLECULAR", "MOLECULES", "SIZES", "Job",
           "Recipe", "reference_for", "split_id"]
