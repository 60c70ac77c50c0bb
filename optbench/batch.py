"""Featurized data as tensors: `FeaturizedSet` (frames featurized once by a backbone) and the
`Batch`es the loss, the evaluation and the curvature analysis read; stress in GPa."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase.units import GPa

from optbench.backbones.base import Backbone
from optbench.data.io import Frame

GPA_PER_EV_A3 = 1 / GPa  # eV/Å^3 -> GPa (exactly 160.21766208)


@dataclass
class Batch:
    """Featurized structures with their labels as tensors; missing labels are masked out."""

    graphs: list
    energy: torch.Tensor  # (B,) eV
    n_atoms: torch.Tensor  # (B,)
    forces: torch.Tensor  # (N, 3) eV/Å
    force_mask: torch.Tensor  # (N,) bool
    stress: torch.Tensor  # (B, 3, 3) GPa
    stress_mask: torch.Tensor  # (B,) bool

    @property
    def has_stress(self) -> bool:
        return bool(self.stress_mask.any())

    @property
    def has_forces(self) -> bool:
        return bool(self.force_mask.any())


class FeaturizedSet:
    """Frames featurized once by a backbone; batches are assembled from the cache.

    `graphs` (one per frame, already featurized) skips featurization; otherwise they come from
    the on-disk cache of `optbench.featcache`, computed there on a miss.
    """

    def __init__(self, frames: Sequence[Frame], backbone: Backbone, name: str = "data", graphs: list | None = None):
        from optbench.featcache import featurize_frames

        self.frames = list(frames)
        self.name = name
        self.graphs = featurize_frames(self.frames, backbone) if graphs is None else list(graphs)
        self._energy = torch.tensor([np.nan if f.energy is None else f.energy for f in self.frames], dtype=torch.float64)
        self._n_atoms = torch.tensor([f.n_atoms for f in self.frames])
        self._forces = [
            torch.as_tensor(f.forces, dtype=torch.float32) if f.forces is not None else torch.zeros(f.n_atoms, 3)
            for f in self.frames
        ]
        self._fmask = [torch.full((f.n_atoms,), f.forces is not None) for f in self.frames]
        self._stress = torch.stack([
            torch.as_tensor(f.stress * GPA_PER_EV_A3, dtype=torch.float32) if f.stress is not None else torch.zeros(3, 3)
            for f in self.frames
        ]) if self.frames else torch.zeros(0, 3, 3)
        self._smask = torch.tensor([f.stress is not None for f in self.frames])

    def __len__(self) -> int:
        return len(self.frames)

    def batch(self, indices: Sequence[int]) -> Batch:
        idx = [int(i) for i in indices]
        t = torch.as_tensor(idx, dtype=torch.long)
        return Batch(
            graphs=[self.graphs[i] for i in idx],
            energy=self._energy[t],
            n_atoms=self._n_atoms[t],
            forces=torch.cat([self._forces[i] for i in idx]),
            force_mask=torch.cat([self._fmask[i] for i in idx]),
            stress=self._stress[t],
            stress_mask=self._smask[t],
        )

    def batches(self, batch_size: int, order: Sequence[int] | None = None) -> Iterator[Batch]:
        order = list(range(len(self))) if order is None else list(order)
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size])

    @property
    def any_stress(self) -> bool:
        return bool(self._smask.any())
