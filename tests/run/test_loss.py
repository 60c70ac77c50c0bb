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


# ---------------------------------------------------------------- Huber (MACE's `loss: huber`)
def _huber(err: float, delta: float) -> float:
    """torch's / MACE's Huber of one error (its units): 0.5 e^2 inside delta, delta (|e| - delta / 2) beyond."""
    return 0.5 * err**2 if abs(err) <= delta else delta * (abs(err) - delta / 2)


@pytest.mark.parametrize("delta", [1.0, 0.01, 0.002])
def test_huber_terms_by_hand(shifted, delta):
    """delta 1: every error inside, each term half its MSE; MACE's 0.01: energy (0.1 eV/atom) and forces
    (0.2 eV/Å) linear, stress (1 GPa = 0.0062 eV/Å^3) still quadratic; 0.002: all three linear."""
    backbone, data = shifted
    _, mse = compute_loss(backbone, data.batch([0, 1]), LossWeights())
    total, parts = compute_loss(backbone, data.batch([0, 1]), LossWeights(), huber_delta=delta)
    s_err = DS_GPA / GPA_PER_EV_A3  # eV/Å^3
    expected = {"energy": _huber(DE_PER_ATOM, delta), "forces": _huber(DF, delta),
                "stress": _huber(s_err, delta) * GPA_PER_EV_A3**2}  # the stress term in GPa^2
    for key, value in expected.items():
        assert float(parts[key]) == pytest.approx(value, rel=2e-3), key
    if delta == 1.0:
        for key in expected:
            assert float(parts[key]) == pytest.approx(float(mse[key]) / 2, rel=1e-5), key
    assert float(total) == pytest.approx(expected["energy"] + 10 * expected["forces"] + 0.1 * expected["stress"], rel=2e-3)


def test_huber_equals_maces_weighted_huber_loss(shifted):
    """The same batch through mace-torch's WeightedHuberEnergyForcesStressLoss (stress in eV/Å^3, its
    weight in (eV/Å^3)^-2 = ours x 160.2^2)."""
    from mace.modules.loss import WeightedHuberEnergyForcesStressLoss

    class _Ref(dict):
        ptr: torch.Tensor

    backbone, data = shifted
    batch = data.batch([0, 1])
    pred = backbone.predict(batch.graphs, stress=True)
    ref = _Ref(energy=batch.energy.float(), forces=batch.forces.float(), stress=batch.stress.float() / GPA_PER_EV_A3)
    ref.ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(batch.n_atoms, 0)])
    theirs = WeightedHuberEnergyForcesStressLoss(energy_weight=1.0, forces_weight=10.0, stress_weight=0.1 * GPA_PER_EV_A3**2,
                                                 huber_delta=0.01)
    mace = theirs(ref, {"energy": pred.energy.detach(), "forces": pred.forces.detach(), "stress": pred.stress.detach()})
    ours, _ = compute_loss(backbone, batch, LossWeights(), huber_delta=0.01)
    assert float(ours) == pytest.approx(float(mace), rel=1e-4)
