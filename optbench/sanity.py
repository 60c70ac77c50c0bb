"""Checks of structures and labels before any work: every problem is exit 2 naming file, frame, field.

- positions and cells finite, boundaries fully periodic (with a 3D cell) or fully open;
- no two atoms (or an atom and its own periodic image) closer than MIN_DISTANCE_A;
- the neighbour count the backbone's cutoff implies stays within a memory budget, estimated
  from the number density before anything is featurized (a 0.5 Å periodic cell would
  otherwise grow a graph of many GB);
- label keys the user named exist in the data; partial coverage is counted and reported.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from optbench.data.io import Frame
from optbench.errors import InputError

MIN_DISTANCE_A = 0.3  # Å: closer atoms are an input error, not a physical structure
MAX_NEIGHBOURS = 600  # per atom within the cutoff; dense solids have ~100 at 6 Å
ALL_PAIRS_MAX_ATOMS = 200  # open structures up to this size: overlap check over every pair (no k-d tree)
BYTES_PER_EDGE = 2000  # generous memory per neighbour pair of a featurized graph (bond + angle terms)
DEFAULT_BUDGET_GB = 4.0  # featurization budget per set; OPTBENCH_MEMORY_GB overrides it


def memory_budget_bytes() -> float:
    """Featurization memory budget in bytes ($OPTBENCH_MEMORY_GB, default 4 GB)."""
    return float(os.environ.get("OPTBENCH_MEMORY_GB", DEFAULT_BUDGET_GB)) * 1e9


def _boundaries(atoms, path, i) -> None:
    if not np.all(np.isfinite(atoms.positions)):
        raise InputError(f"frame {i}: positions contain NaN or inf", file=path, field="positions")
    pbc = atoms.pbc
    if pbc.any() and not pbc.all():
        raise InputError(f"frame {i}: partly periodic boundaries {pbc.tolist()} are not supported "
                         "(use all True or all False)", file=path, field="pbc")
    if pbc.all():
        cell = np.asarray(atoms.cell)
        if not np.all(np.isfinite(cell)):
            raise InputError(f"frame {i}: cell contains NaN or inf", file=path, field="cell")
        if atoms.cell.rank < 3 or abs(atoms.get_volume()) < 1e-6:
            raise InputError(f"frame {i}: periodic but the cell has no volume", file=path, field="cell")


def expected_neighbours(atoms, cutoff: float) -> float:
    """Mean number of neighbours per atom within `cutoff` Å, from the number density (no graph built)."""
    n = len(atoms)
    if atoms.pbc.all():
        density = n / abs(atoms.get_volume())
        return density * 4.0 / 3.0 * math.pi * cutoff**3
    return float(n - 1)


def _close_pairs(atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance Å) of the atom pairs closer than MIN_DISTANCE_A.

    Open boundaries: every pair of a small molecule directly, larger ones with a k-d tree on the
    positions (ASE's neighbour list bins the whole cell, which for a molecule in a 50 Å box at a
    0.3 Å cutoff costs ~0.2 s a structure; importing scipy for 20 atoms costs ~0.3 s a process).
    """
    if atoms.pbc.any():
        from ase.neighborlist import neighbor_list

        return neighbor_list("ijd", atoms, MIN_DISTANCE_A, self_interaction=False)
    pos = atoms.positions
    if len(pos) <= ALL_PAIRS_MAX_ATOMS:
        first, second = np.triu_indices(len(pos), 1)
        dist = np.linalg.norm(pos[first] - pos[second], axis=1)
        close = dist <= MIN_DISTANCE_A
        return first[close], second[close], dist[close]
    from scipy.spatial import cKDTree

    pairs = cKDTree(pos).query_pairs(MIN_DISTANCE_A, output_type="ndarray").reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1], np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)


def _overlap(atoms, path, i) -> None:
    first, second, dist = _close_pairs(atoms)
    if len(dist):
        k = int(np.argmin(dist))
        a, b = int(first[k]), int(second[k])
        what = f"atom {a} is {dist[k]:.3f} Å from its own periodic image" if a == b else \
            f"atoms {a} and {b} are {dist[k]:.3f} Å apart"
        raise InputError(f"frame {i}: {what} (below {MIN_DISTANCE_A} Å: overlapping atoms)", file=path, field="positions")


def check_structures(frames: Iterable[Frame], path: str | Path, cutoff: float | None = None) -> dict:
    """Raise InputError on the first unusable structure; returns the estimated neighbour count and memory."""
    cutoff = float(cutoff or 6.0)
    edges = 0.0
    worst = 0.0
    for i, frame in enumerate(frames):
        atoms = frame.atoms
        _boundaries(atoms, path, i)
        nb = expected_neighbours(atoms, cutoff)
        if nb > MAX_NEIGHBOURS:
            raise InputError(
                f"frame {i}: about {nb:.0f} neighbours per atom within the {cutoff:g} Å cutoff "
                f"({len(atoms) / abs(atoms.get_volume()):.3g} atoms/Å^3); the cell is far too small or dense "
                f"(limit {MAX_NEIGHBOURS})", file=path, field="cell")
        _overlap(atoms, path, i)
        edges += nb * len(atoms)
        worst = max(worst, nb)
    need = edges * BYTES_PER_EDGE
    if need > memory_budget_bytes():
        raise InputError(
            f"featurizing this set would need about {need / 1e9:.1f} GB ({edges:.3g} neighbour pairs within "
            f"{cutoff:g} Å), above the budget of {memory_budget_bytes() / 1e9:.1f} GB (set OPTBENCH_MEMORY_GB)",
            file=path, field="structures")
    return {"neighbour_pairs": edges, "max_neighbours_per_atom": worst, "memory_estimate_GB": need / 1e9}


def _present(frame: Frame, kind: str) -> bool:
    return {"energy": frame.energy, "forces": frame.forces, "stress": frame.stress, "virial": frame.stress}[kind] is not None


def label_coverage(sets: Mapping[str, tuple[str | Path, list[Frame]]], keys: Mapping[str, str],
                   named: Iterable[str] = (), required_in: Iterable[str] = ()) -> dict:
    """How many frames of each set lack each label; InputError when a named key is in no frame of a set.

    `sets`: name -> (file, frames); `keys`: kind -> key name; `named`: kinds whose key the user
    gave explicitly; `required_in`: the sets where a named key must occur (the training data).
    Returns {set: {kind: {"key", "missing", "of"}}} for partly labelled sets only.
    """
    named, required_in = set(named), set(required_in)
    out: dict = {}
    for name, (path, frames) in sets.items():
        for kind in ("energy", "forces", "stress"):
            have = sum(_present(f, kind) for f in frames)
            if have == 0 and kind in named and name in required_in:
                if kind == "stress" and "virial" in keys and any(_present(f, "virial") for f in frames):
                    continue
                raise InputError(f"no frame of {len(frames)} has the label '{keys[kind]}' named for {kind}",
                                 file=path, field=keys[kind])
            if 0 < have < len(frames):
                out.setdefault(name, {})[kind] = {"key": keys[kind], "missing": len(frames) - have, "of": len(frames)}
    return out


def coverage_lines(coverage: Mapping) -> list[str]:
    """One log line per partly labelled (set, label)."""
    return [f"note: {c['missing']} of {c['of']} frames of set '{name}' have no '{c['key']}' ({kind}); "
            f"that term is masked for them" for name, kinds in coverage.items() for kind, c in kinds.items()]
