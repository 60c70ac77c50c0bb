"""The fine-tuning loss: weighted energy/force/stress MSE (or Huber) on featurized batches.

Energy enters per atom (eV/atom), forces in eV/Å, stress in GPa, so the default weights
(energy=1, forces=10, stress=0.1) mean the same thing for every backbone.
Huber (`huber_delta`, MACE's `loss: huber`, `WeightedHuberEnergyForcesStressLoss`): each term is
the mean of torch's huber_loss, 0.5 e^2 where |e| <= delta and delta (|e| - delta / 2) beyond, with
one delta in MACE's units for all three (eV/atom, eV/Å, eV/Å^3; the stress term is computed in
GPa with delta x 160.2, which is MACE's term times 160.2^2, so the weights keep their units).
Inside delta a Huber term is half the MSE term.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from optbench.backbones.base import Backbone
from optbench.batch import GPA_PER_EV_A3, Batch, FeaturizedSet

__all__ = ["GPA_PER_EV_A3", "Batch", "FeaturizedSet", "LossWeights", "compute_loss", "loss_from_metrics", "weighted_loss"]


class LossWeights(BaseModel):
    """Weights of the MSE terms: energy (eV/atom)^2, forces (eV/Å)^2, stress (GPa)^2."""

    model_config = ConfigDict(extra="forbid")
    energy: float = Field(1.0, ge=0)
    forces: float = Field(10.0, ge=0)
    stress: float = Field(0.1, ge=0)


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


def _to(labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Host labels as `like`'s dtype on its device; the copy to a GPU does not wait for the device."""
    return labels.to(device=like.device, dtype=like.dtype, non_blocking=True)


def _mean_error(err: torch.Tensor, delta: float | None) -> torch.Tensor:
    """Mean of err^2 (delta None), or mean Huber of err with `delta` (err's units)."""
    if delta is None:
        return (err**2).mean()
    return torch.nn.functional.huber_loss(err, torch.zeros_like(err), delta=delta)


def compute_loss(backbone: Backbone, batch: Batch, weights: LossWeights,
                 huber_delta: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted loss of one batch and its parts (unweighted, detached): MSE terms, or Huber terms
    with `huber_delta` (eV/atom, eV/Å, eV/Å^3)."""
    use_stress = weights.stress > 0 and batch.has_stress
    pred = backbone.predict(batch.graphs, stress=use_stress)
    n = _to(batch.n_atoms, pred.energy)
    e_err = (pred.energy - _to(batch.energy, pred.energy)) / n
    emask = torch.isfinite(e_err)
    zero = pred.energy.sum() * 0.0
    e_loss = _mean_error(e_err[emask], huber_delta) if emask.any() else zero
    if not batch.has_forces:
        f_loss = zero
    elif bool(batch.force_mask.all()):  # every force labelled (the host knows): no masked gather on the device
        f_loss = _mean_error(pred.forces - _to(batch.forces, pred.forces), huber_delta)
    else:
        f_loss = _mean_error(pred.forces[batch.force_mask] - _to(batch.forces[batch.force_mask], pred.forces), huber_delta)
    if use_stress:
        every = bool(batch.stress_mask.all())
        s_pred = (pred.stress if every else pred.stress[batch.stress_mask]) * GPA_PER_EV_A3
        s_delta = None if huber_delta is None else huber_delta * GPA_PER_EV_A3
        s_loss = _mean_error(s_pred - _to(batch.stress if every else batch.stress[batch.stress_mask], s_pred), s_delta)
    else:
        s_loss = zero
    total = weighted_loss(weights, e_loss, f_loss, s_loss)
    parts = {"energy": e_loss.detach(), "forces": f_loss.detach(), "stress": s_loss.detach()}
    return total, parts
