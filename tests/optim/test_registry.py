"""Every registry name takes real steps on CHGNet that lower the loss on a fixed batch."""

from __future__ import annotations

import pytest
import torch

from optbench.backbones import load_backbone
from optbench.data import read_frames
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights, compute_loss
from optbench.optim import REGISTRY, build_optimizer, set_mode
from optbench.train import fit_reference_energies

CASES = [
    ("adam", 1e-3), ("adamw", 1e-3), ("radam", 1e-3), ("sgd", 1e-4), ("lamb", 1e-3),
    ("ranger", 1e-3), ("schedulefree", 1e-3), ("lbfgs", 0.1), ("torch.optim:Adagrad", 1e-2), ("mace_recipe", 1e-3),
]


@pytest.fixture(scope="module")
def problem(ethanol_small):
    frames = read_frames(ethanol_small["train"])[:6]
    backbone = load_backbone("chgnet")
    fset = FeaturizedSet(frames, backbone)
    fit_reference_energies(backbone, fset)
    return backbone, fset, {k: v.clone() for k, v in backbone.model.state_dict().items()}


def test_every_registry_entry_is_stepped_below():
    """A new registry entry cannot go untested: it must join CASES (a name and an LR that trains)."""
    assert set(REGISTRY) <= {name for name, _ in CASES}


@pytest.mark.parametrize("name,lr", CASES)
def test_steps_lower_the_loss(problem, name, lr):
    backbone, fset, start = problem
    backbone.model.load_state_dict(start)
    batch = fset.batch(range(len(fset)))
    weights = LossWeights()
    opt = build_optimizer(name, backbone.parameters(), lr)

    def closure():
        opt.zero_grad()
        loss, _ = compute_loss(backbone, batch, weights)
        loss.backward()
        return loss

    first = float(closure())
    for _ in range(4):
        opt.step(closure)
    set_mode(opt, train=False)  # ScheduleFree: judge its eval weights
    last = float(compute_loss(backbone, batch, weights)[0])
    assert last < first, f"{name}: loss {first:.4g} -> {last:.4g}"


def test_sgd_steps_with_nesterov_momentum():
    """Registry SGD is Nesterov momentum 0.9: the first step is lr (1 + 0.9) g, the second
    lr (g + 0.9 (0.9 g + g)) for a constant gradient g; plain SGD would step lr g each time."""
    p = torch.nn.Parameter(torch.zeros(2))
    g = torch.tensor([1.0, -2.0])
    opt = build_optimizer("sgd", [p], 0.1)
    steps = []
    for _ in range(2):
        before = p.detach().clone()
        opt.zero_grad()
        (p * g).sum().backward()
        opt.step()
        steps.append(before - p.detach())
    torch.testing.assert_close(steps[0], 0.1 * 1.9 * g)
    torch.testing.assert_close(steps[1], 0.1 * (g + 0.9 * (0.9 * g + g)))


@pytest.mark.parametrize("name", ["nosuch", "torch.optim:NoSuch", "builtins:dict"])
def test_unknown_optimizer_is_a_clear_error(name):
    with pytest.raises(InputError, match="optimizer"):
        build_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], 0.1)
