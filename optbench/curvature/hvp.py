"""Hessian-vector products of the exact fine-tuning loss (double backward), or Gauss-Newton products.

Vectors are flat float64 tensors on the host over a `ParamSpace`: the trainable parameters that
receive a gradient from the loss on the chosen subset (parameters outside the loss graph are listed,
not used); the products themselves run on the model's device.
Units of H: loss units per (parameter unit)^2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from optbench.backbones.base import Backbone, Prediction
from optbench.batch import Batch
from optbench.loss import LossWeights, compute_loss


@dataclass
class ParamSpace:
    """A flat coordinate system over selected parameters: `index[j]` is the position of the j-th
    selected tensor in the full parameter list (== optimizer state index)."""

    params: list[torch.Tensor]
    index: list[int]
    names: list[str]

    @property
    def dim(self) -> int:
        return sum(p.numel() for p in self.params)

    def split(self, flat: torch.Tensor, dtype=None) -> list[torch.Tensor]:
        out, start = [], 0
        for p in self.params:
            n = p.numel()
            out.append(flat[start : start + n].view_as(p).to(device=p.device, dtype=dtype or p.dtype))
            start += n
        return out

    def flatten(self, tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
        parts = [
            torch.zeros(p.numel(), dtype=torch.float64) if t is None else t.detach().reshape(-1).to("cpu", torch.float64)
            for p, t in zip(self.params, tensors, strict=True)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


class _FixedPrediction:
    """Stand-in backbone whose `predict` returns given tensors: lets `compute_loss` act on outputs."""

    def __init__(self, pred: Prediction):
        self.pred = pred

    def predict(self, graphs, *, stress: bool = False, create_graph: bool = True) -> Prediction:
        return self.pred


def _dot(a: Sequence[torch.Tensor | None], b: Sequence[torch.Tensor]) -> torch.Tensor | None:
    terms = [(x * y).sum() for x, y in zip(a, b, strict=True) if x is not None and x.requires_grad]
    return torch.stack(terms).sum() if terms else None


class HessianOperator:
    """v -> H v of `compute_loss(backbone, batch, weights)` w.r.t. the space's parameters.

    The gradient graph is built once (create_graph=True) and reused by every product, so one product
    costs one extra backward pass. With `gauss_newton=True` the product is J^T H_L J v, where J is the
    Jacobian of the predictions (energies, forces, stress) and H_L the Hessian of the loss in them.
    """

    def __init__(
        self,
        backbone: Backbone,
        batch: Batch,
        weights: LossWeights,
        names_params: Sequence[tuple[str, torch.Tensor]] | None = None,
        *,
        gauss_newton: bool = False,
    ):
        self.backbone = backbone
        self.gauss_newton = gauss_newton
        named = list(names_params) if names_params is not None else list(backbone.named_parameters())
        all_params = [p for _, p in named]
        self.n_matvec = 0
        # the graphs built here are differentiated once more by every product
        with getattr(backbone, "higher_derivatives", contextlib.nullcontext)():
            if gauss_newton:
                grads = self._setup_gn(batch, weights, all_params)
            else:
                self.loss, self.parts = compute_loss(backbone, batch, weights)
                grads = torch.autograd.grad(self.loss, all_params, create_graph=True, allow_unused=True)
        keep = [i for i, g in enumerate(grads) if g is not None]
        self.space = ParamSpace([all_params[i] for i in keep], keep, [named[i][0] for i in keep])
        self.unused = [named[i][0] for i in range(len(named)) if grads[i] is None]
        self._grads = [grads[i] for i in keep]
        self.gradient = self.space.flatten(self._grads)
        self.dim = self.space.dim

    # ---------------------------------------------------------------- exact Hessian
    def _hvp(self, v: torch.Tensor) -> list[torch.Tensor | None]:
        vs = self.space.split(v)
        dot = _dot(self._grads, vs)
        if dot is None:  # loss linear in every parameter
            return [None] * len(vs)
        return list(torch.autograd.grad(dot, self.space.params, retain_graph=True, allow_unused=True))

    # ---------------------------------------------------------------- Gauss-Newton
    def _setup_gn(self, batch: Batch, weights: LossWeights, params: list[torch.Tensor]) -> list:
        """Build the graphs J^T u (u a dummy) and dL/do once; return the loss gradient J^T dL/do."""
        use_stress = weights.stress > 0 and batch.has_stress
        pred = self.backbone.predict(batch.graphs, stress=use_stress)
        outs = [pred.energy, pred.forces] + ([pred.stress] if use_stress else [])
        leaves = [o.detach().requires_grad_(True) for o in outs]
        fixed = Prediction(energy=leaves[0], forces=leaves[1], stress=leaves[2] if use_stress else None, n_atoms=pred.n_atoms)
        self.loss, self.parts = compute_loss(_FixedPrediction(fixed), batch, weights)
        self._outs, self._leaves = outs, leaves
        self._gl = torch.autograd.grad(self.loss, leaves, create_graph=True)
        self._dummy = [torch.zeros_like(o, requires_grad=True) for o in outs]
        self._jt_dummy = torch.autograd.grad(outs, params, grad_outputs=self._dummy, create_graph=True, allow_unused=True)
        gl = [g.detach() for g in self._gl]
        grads = torch.autograd.grad(outs, params, grad_outputs=gl, retain_graph=True, allow_unused=True)
        return [None if j is None else g for j, g in zip(self._jt_dummy, grads, strict=True)]

    def _gnvp(self, v: torch.Tensor) -> list[torch.Tensor | None]:
        vs = self.space.split(v)
        jt = [self._jt_dummy[i] for i in self.space.index]
        dot = _dot(jt, vs)
        if dot is None:
            return [None] * len(vs)
        jv = torch.autograd.grad(dot, self._dummy, retain_graph=True, allow_unused=True)
        jv = [torch.zeros_like(d) if x is None else x for d, x in zip(self._dummy, jv, strict=True)]
        hl_dot = torch.stack([(g * x).sum() for g, x in zip(self._gl, jv, strict=True)]).sum()
        hjv = torch.autograd.grad(hl_dot, self._leaves, retain_graph=True, allow_unused=True)
        hjv = [torch.zeros_like(o) if x is None else x for o, x in zip(self._outs, hjv, strict=True)]
        return list(torch.autograd.grad(self._outs, self.space.params, grad_outputs=hjv, retain_graph=True, allow_unused=True))

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H v (or G v) for a flat float64 vector v of length `dim`; returns float64."""
        self.n_matvec += 1
        out = self._gnvp(v) if self.gauss_newton else self._hvp(v)
        return self.space.flatten(out)


def build_hvp_operator(
    backbone: Backbone,
    featurized_set,
    weights: LossWeights,
    indices: Sequence[int] | None = None,
    *,
    gauss_newton: bool = False,
    names_params: Sequence[tuple[str, torch.Tensor]] | None = None,
) -> HessianOperator:
    """The Hessian (or Gauss-Newton) operator of the fine-tuning loss on `featurized_set[indices]`
    as one batch, at the backbone's current weights (model put in eval mode: no dropout), over
    `names_params` (default: the backbone's trainable parameters)."""
    backbone.model.eval()
    idx = list(range(len(featurized_set))) if indices is None else list(indices)
    return HessianOperator(backbone, featurized_set.batch(idx), weights, names_params, gauss_newton=gauss_newton)
