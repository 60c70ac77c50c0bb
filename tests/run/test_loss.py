"""The fine-tuning loss against numbers computed by hand: labels are the real CHGNet's own
predictions shifted by known offsets, so each MSE term is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from pydantic import ValidationError

from optbench.data.io import Frame
from optbench.loss import (
    GPA_PER_EV_A3,
    FeaturizedSet,
    LossWeights,
    compute_loss,
    loss_from_metrics,
    weighted_loss,
)

DE_PER_ATOM, DF, DS_GPA = 0.1, 0.2, 1.0  # eV/atom, eV/Å, GPa


def test_weighted_loss_and_its_default_weights():
    assert LossWeights().model_dump() == {"energy": 1.0, "forces": 10.0, "stress": 0.1}
    assert weighted_loss(LossWeights(), 1.0, 2.0, 3.0) == pytest.approx(1.0 + 20.0 + 0.3)
    assert weighted_loss(LossWeights(energy=0, forces=1, stress=2), 5.0, 0.5, 0.25) == pytest.approx(1.0)


def test_loss_from_metrics_converts_milli_units_and_treats_missing_as_zero():
    block = {"energy_rmse": 10.0, "forces_rmse": 100.0, "stress_rmse": 0.5}  # meV/atom, meV/Å, GPa
    assert loss_from_metrics(block, LossWeights()) == pytest.approx(0.01**2 + 10 * 0.1**2 + 0.1 * 0.5**2)
    assert loss_from_metrics({"forces_rmse": 100.0, "stress_rmse": None}, LossWeights()) == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [{"energy": -1.0}, {"force": 1.0}, {"stress": "high"}])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValidationError):
        LossWeights(**bad)


@pytest.fixture(scope="module")
def shifted():
    """CHGNet, two rattled Cu cells labelled with its predictions + offsets, one unlabelled cell."""
    from optbench.backbones import load_backbone

    torch.manual_seed(0)
    backbone = load_backbone("chgnet")
    cells = []
    for i, n in enumerate((1, 2)):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((n, 1, 1))
        atoms.rattle(0.05, seed=i)
        cells.append(atoms)
    graphs = [backbone.featurize(a) for a in cells]
    pred = backbone.predict(graphs, stress=True)
    energy, forces, stress = (t.detach().double().numpy() for t in (pred.energy, pred.forces, pred.stress))
    frames, start = [], 0
    for i, atoms in enumerate(cells):
        n = len(atoms)
        frames.append(Frame(atoms, energy=float(energy[i]) + DE_PER_ATOM * n, forces=forces[start:start + n] + DF,
                            stress=stress[i] + DS_GPA / GPA_PER_EV_A3))
        start += n
    frames.append(Frame(bulk("Cu", "fcc", a=3.6, cubic=True)))  # no labels at all: masked out
    return backbone, FeaturizedSet(frames, backbone, graphs=[*graphs, backbone.featurize(frames[2].atoms)])


def test_each_term_is_the_known_offset_squared(shifted):
    backbone, data = shifted
    total, parts = compute_loss(backbone, data.batch([0, 1]), LossWeights())
    assert float(parts["energy"]) == pytest.approx(DE_PER_ATOM**2, rel=1e-3)  # per atom, as weighted
    assert float(parts["forces"]) == pytest.approx(DF**2, rel=1e-3)
    assert float(parts["stress"]) == pytest.approx(DS_GPA**2, rel=1e-3)  # in GPa
    assert float(total) == pytest.approx(1 * DE_PER_ATOM**2 + 10 * DF**2 + 0.1 * DS_GPA**2, rel=1e-3)
    assert total.requires_grad and not parts["forces"].requires_grad


def test_missing_labels_are_masked_not_counted_as_zero(shifted):
    backbone, data = shifted
    _, with_blank = compute_loss(backbone, data.batch([0, 2, 1]), LossWeights())
    _, without = compute_loss(backbone, data.batch([0, 1]), LossWeights())
    for key in ("energy", "forces", "stress"):
        assert float(with_blank[key]) == pytest.approx(float(without[key]), rel=1e-5), key
    _, blank = compute_loss(backbone, data.batch([2]), LossWeights())
    assert all(float(v) == 0.0 for v in blank.values())


def test_a_zero_weight_drops_its_term(shifted):
    backbone, data = shifted
    total, parts = compute_loss(backbone, data.batch([0, 1]), LossWeights(energy=0.0, forces=1.0, stress=0.0))
    assert float(parts["stress"]) == 0.0  # not even computed
    assert float(total) == pytest.approx(DF**2, rel=1e-3)
    assert np.isclose(float(parts["energy"]), DE_PER_ATOM**2, rtol=1e-3)  # still reported, not weighted in
