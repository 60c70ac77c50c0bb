"""The fine-tuning loss: weighted energy/force/stress MSE on featurized batches.

Energy enters per atom (eV/atom), forces in eV/Å, stress in GPa, so the default weights
(energy=1, forces=10, stress=0.1) mean the same thing for every backbone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from optbench.backbones.base import Backbone
from optbench.data.io import Frame

GPA_PER_EV_A3 = 160.21766208


class LossWeights(BaseModel):
    """Weights of the MSE terms: energy (eV/atom)^2, forces (eV/Å)^2, stress (GPa)^2."""

    model_config = ConfigDict(extra="forbid")
    energy: float = Field(1.0, ge=0)
    forces: float = Field(10.0, ge=0)
    stress: float = Field(0.1, ge=0)


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


def weighted_loss(weights: LossWeights, energy_mse, forces_mse, stress_mse):
    """The one loss definition: w_E·MSE_E (eV/atom)^2 + w_F·MSE_F (eV/Å)^2 + w_S·MSE_S (GPa)^2.

    Training applies it to batch tensors, validation to the RMSEs of an error block (`loss_from_metrics`).
    """
    return weights.energy * energy_mse + weights.forces * forces_mse + weights.stress * stress_mse


def loss_from_metrics(block: dict, weights: LossWeights) -> float:
    """`weighted_loss` of a whole set from its error block (RMSEs in meV/atom, meV/Å, GPa; missing = 0)."""
    rmse = {k: block.get(k) or 0.0 for k in ("energy_rmse", "forces_rmse", "stress_rmse")}
    return float(weighted_loss(weights, (rmse["energy_rmse"] / 1000) ** 2, (rmse["forces_rmse"] / 1000) ** 2,
                               rmse["stress_rmse"] ** 2))


def compute_loss(backbone: Backbone, batch: Batch, weights: LossWeights) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted MSE loss of one batch and its parts (unweighted, detached)."""
    use_stress = weights.stress > 0 and batch.has_stress
    pred = backbone.predict(batch.graphs, stress=use_stress)
    n = batch.n_atoms.to(pred.energy)
    e_err = (pred.energy - batch.energy.to(pred.energy)) / n
    emask = torch.isfinite(e_err)
    zero = pred.energy.sum() * 0.0
    e_loss = (e_err[emask] ** 2).mean() if emask.any() else zero
    f_loss = ((pred.forces[batch.force_mask] - batch.forces[batch.force_mask].to(pred.forces)) ** 2).mean() if batch.has_forces else zero
    if use_stress:
        s_pred = pred.stress[batch.stress_mask] * GPA_PER_EV_A3
        s_loss = ((s_pred - batch.stress[batch.stress_mask].to(s_pred)) ** 2).mean()
    else:
        s_loss = zero
    total = weighted_loss(weights, e_loss, f_loss, s_loss)
    parts = {"energy": e_loss.detach(), "forces": f_loss.detach(), "stress": s_loss.detach()}
    return total, parts
