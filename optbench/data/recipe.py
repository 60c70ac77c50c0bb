"""What a regime's sampling recipe is: the structures it builds, its resumable jobs (each producing
frames for one or more splits), its reference properties per size, and the in-distribution split.

The recipes of the built-in regimes live in optbench.data.recipes, one module a regime family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from optbench.data.reference import reference_block
from optbench.regimes import Regime

SIZES = ("small", "full")
ID_FRACTIONS = {"train": 0.6, "valid": 0.15, "test_id": 0.25}


@dataclass
class Job:
    """One resumable unit of work: produces frames for one or more splits."""

    name: str
    run: Callable  # (structures, reference, rng, p) -> {split: (tag, [Atoms])}


@dataclass
class Recipe:
    """How a regime's data are made (its name and reference method: its optbench.regimes entry)."""

    params: dict  # per size: every sampling setting, written to the manifest
    build: Callable  # (reference, rng, p) -> {structure_name: Atoms}
    jobs: list[Job]
    properties: Callable  # p -> {structure_name: {PropertyName: settings}}
    notes: str = ""
    extra: dict = field(default_factory=dict)
    convergence_frames: Callable | None = None  # (structures, rng, p) -> [(frame, base)]: DFT convergence record


def split_id(frames: list[Atoms], rng: np.random.RandomState) -> dict:
    """Partition in-distribution frames into train / valid / test_id with a seeded shuffle."""
    order = rng.permutation(len(frames))
    n_train = int(round(ID_FRACTIONS["train"] * len(frames)))
    n_valid = int(round(ID_FRACTIONS["valid"] * len(frames)))
    parts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test_id": order[n_train + n_valid:]}
    tags = {"train": "train", "valid": "valid", "test_id": "ID"}
    return {k: (tags[k], [frames[i] for i in sorted(idx)]) for k, idx in parts.items()}


def tag_frames(frames, **info):
    """The frames, each with `info` added to its atoms.info (structure, config_type)."""
    for f in frames:
        f.info.update(info)
    return frames


def reference_for(regime: Regime, method: str | None = None) -> dict:
    """The reference block of a regime (its default method unless `method` is given)."""
    return reference_block(method or regime.method)
