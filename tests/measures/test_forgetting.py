"""Forgetting measures drift off the pretrained model, not the E0 refit (real CHGNet)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read

from optbench.forgetting import (
    PROBE,
    ForgettingProbe,
    columns,
    element_offset_residual,
    probe_structures,
)
from optbench.train import finetune

from .data import rattled_ethanol


def test_probe_set_is_varied_and_deterministic():
    a, b = probe_structures(), probe_structures()
    assert 30 <= len(a) <= 60 and max(len(x) for x in a) <= 16
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    assert sum(x.pbc.all() for x in a) >= 20 and sum(not x.pbc.any() for x in a) >= 15  # crystals+slabs, molecules
    assert len({int(z) for x in a for z in x.numbers}) >= 25


def test_element_offsets_are_removed_rank_aware():
    rng = np.random.default_rng(0)
    numbers = [np.array([1, 1, 8])] * 4 + [np.array([6, 1, 1, 1, 1])] * 3  # two compositions, three elements
    frac_shift = np.array([(np.sum(n == 1) * 0.3 + np.sum(n == 8) * -2.0 + np.sum(n == 6) * 1.1) / len(n) for n in numbers])
    fit = element_offset_residual(frac_shift, numbers)
    assert fit["rank"] == 2  # H2O and CH4 alone cannot fix three offsets
    np.testing.assert_allclose(fit["residual"], 0.0, atol=1e-12)
    noise = rng.normal(0, 0.01, len(numbers))
    assert np.std(element_offset_residual(frac_shift + noise, numbers)["residual"]) > 0.001


@pytest.fixture(scope="module")
def ethanol_emt(tmp_path_factory):
    return rattled_ethanol(tmp_path_factory.mktemp("fg") / "train.xyz", 8)


def test_zero_step_refit_run_does_not_forget(ethanol_emt, tmp_path):
    """EMT energies sit eV/atom away from CHGNet's: the refit shifts C, H and O a lot, and nothing else moves."""
    res = finetune(dict(model="chgnet", train=ethanol_emt, max_steps=0, e0="refit", valid_fraction=0.25, out=tmp_path / "run"))
    assert res["e0"]["rmse_before_meV_per_atom"] > 1000
    probe = ForgettingProbe("chgnet", {"ethanol": read(ethanol_emt, index=":")})
    result = probe.measure(tmp_path / "run")
    for name in (PROBE, "ethanol"):
        assert result[name]["energy_rms_meV_atom"] < 0.01, name
        assert result[name]["forces_rms_meV_A"] < 1e-3, name
    # the offsets removed are eV-sized: counted as drift, the refit alone would swamp any real change
    mean_removed = max(abs(v) for v in result[PROBE]["energy_offsets_eV"].values())
    assert mean_removed > 1.0
    cols = columns(result)
    assert cols["forgetting_energy_rms_meV_atom"] == result[PROBE]["energy_rms_meV_atom"]
    assert "forgetting_forces_rms_meV_A[ethanol]" in cols


def test_training_steps_do_move_predictions(ethanol_emt, tmp_path):
    finetune(dict(model="chgnet", train=ethanol_emt, max_steps=3, lr=1e-3, valid_fraction=0.25, out=tmp_path / "run"))
    result = ForgettingProbe("chgnet").measure(tmp_path / "run")[PROBE]
    assert result["forces_rms_meV_A"] > 0.1 and result["energy_rms_meV_atom"] > 0.1
