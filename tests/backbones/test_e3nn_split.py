"""e3nn's column slices read from one split (optbench.backbones.e3nn_split): the same numbers bit for bit as
e3nn's own code, for predictions with stress and for the training gradient (a force loss: double
backward), on SevenNet-0 and MACE; the rewritten model copies (a deep copy re-traces e3nn's code)."""

from __future__ import annotations

import copy

import pytest
import torch
from ase.build import bulk, molecule

import optbench.backbones.mace as mace_adapter
import optbench.backbones.sevennet as sevennet_adapter
from optbench.backbones import load_backbone
from optbench.backbones.e3nn_split import split_column_slices

ADAPTERS = {"sevennet-0": sevennet_adapter, "mace": mace_adapter}


def _structures():
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    si.rattle(0.05, seed=1)
    water = molecule("H2O")
    water.rattle(0.05, seed=2)
    return [si, water]


def _numbers(bb) -> dict:
    graphs = [bb.featurize(a) for a in _structures()]
    bb.model.eval()
    pred = bb.predict(graphs, stress=True, create_graph=False)
    bb.model.train()  # SevenNet's force modules keep the graph for second derivatives in train mode
    train = bb.predict(graphs, stress=True, create_graph=True)
    loss = train.energy.pow(2).sum() + 10 * train.forces.pow(2).sum() + train.stress.pow(2).sum()
    params = [p for p in bb.model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    bb.model.eval()
    return {"energy": pred.energy, "forces": pred.forces, "stress": pred.stress,
            "grads": [torch.zeros(()) if g is None else g for g in grads]}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_split_slices_give_e3nn_numbers_bit_for_bit(name, small_mace_file, monkeypatch):
    spec = f"mace:{small_mace_file}" if name == "mace" else name
    split = load_backbone(spec)
    monkeypatch.setattr(ADAPTERS[name], "split_column_slices", lambda model: 0)  # e3nn's code as it comes
    plain = load_backbone(spec)
    monkeypatch.undo()
    assert split_column_slices(copy.deepcopy(plain.model)) > 0  # there was something to rewrite
    assert split_column_slices(split.model) == 0  # and the adapter had rewritten it all
    ours, theirs = _numbers(split), _numbers(plain)
    for key in ("energy", "forces", "stress"):
        assert torch.equal(ours[key], theirs[key]), key
    assert all(torch.equal(a, b) for a, b in zip(ours["grads"], theirs["grads"], strict=True))
    copied = copy.deepcopy(split)
    assert torch.equal(_numbers(copied)["forces"], ours["forces"])
