"""A toy pair potential small enough for a dense Hessian, behind the real Backbone protocol."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from optbench.backbones.base import Backbone, Prediction

ETHANOL = Path(__file__).parents[1] / "fixtures" / "ethanol_revmd17_mini" / "train.xyz"


class PairMLP(nn.Module):
    """E = n_atoms * e0 + sum over pairs of MLP(r_ij, z_i + z_j); float64."""

    def __init__(self, hidden: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.e0 = nn.Parameter(torch.tensor(-466.0))
        self.unused = nn.Linear(2, 2)  # never called: gets no gradient
        self.double()

    def forward(self, pos: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        i, j = torch.triu_indices(len(pos), len(pos), 1)
        r = (pos[i] - pos[j]).norm(dim=1)
        z = (numbers[i] + numbers[j]).to(pos) / 10.0
        return len(pos) * self.e0 + self.net(torch.stack([r, z], dim=1)).sum()


class ToyBackbone(Backbone):
    name = "toy"
    GROUPS = (("embedding", ("net.0.*",)), ("interaction", ("net.2.*", "unused.*")), ("readout", ("net.4.*",)),
              ("reference", ("e0",)))

    def __init__(self, hidden: int = 8, seed: int = 0):
        super().__init__(PairMLP(hidden, seed))
        self.params_override = None  # {name: tensor} to evaluate at other weights (dense tests)

    def featurize(self, atoms):
        return {"pos": torch.as_tensor(atoms.positions, dtype=torch.float64), "z": torch.as_tensor(atoms.numbers)}

    def predict(self, graphs, *, stress: bool = False, create_graph: bool = True) -> Prediction:
        energies, forces = [], []
        for g in graphs:
            pos = g["pos"].clone().requires_grad_(True)
            if self.params_override is None:
                e = self.model(pos, g["z"])
            else:
                e = torch.func.functional_call(self.model, self.params_override, (pos, g["z"]))
            f = -torch.autograd.grad(e, pos, create_graph=True)[0]
            energies.append(e)
            forces.append(f)
        n = torch.tensor([len(g["pos"]) for g in graphs])
        return Prediction(energy=torch.stack(energies), forces=torch.cat(forces), stress=None, n_atoms=n)

    def shift_reference_energies(self, shifts):
        with torch.no_grad():
            self.model.e0 += sum(shifts.values()) / max(len(shifts), 1)

    def save_native(self, directory):
        torch.save(self.model.state_dict(), directory / "toy.pt")
        return "toy.pt"


def load(rest: str = "", device: str = "cpu") -> ToyBackbone:
    """Backbone loader for `register_backbone("toy", f"{__name__}:load")`: a fresh toy (seed 0),
    or the weights a run saved when `rest` names its toy.pt."""
    bb = ToyBackbone()
    if rest:
        bb.model.load_state_dict(torch.load(rest, map_location=device))
    return bb


def finite_difference_hvp(backbone, fs, weights, op, v, eps: float):
    """H v by central differences of the loss gradient, eps along v (shifts the model's parameters
    and restores them): the known answer the Hessian-vector products are checked against."""
    from optbench.curvature import build_hvp_operator

    params = op.space.params

    def grad_at(shift):
        with torch.no_grad():
            for p, d in zip(params, op.space.split(shift), strict=True):
                p.add_(d)
        try:
            return build_hvp_operator(backbone, fs, weights).gradient
        finally:
            with torch.no_grad():
                for p, d in zip(params, op.space.split(shift), strict=True):
                    p.sub_(d)

    return (grad_at(eps * v) - grad_at(-eps * v)) / (2 * eps)
