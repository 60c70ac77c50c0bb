"""Report column names read as words with units, never as raw keys."""

from __future__ import annotations

import pytest

from optbench.report.labels import human, unit_of


@pytest.mark.parametrize(("key", "name"), [
    ("final.test_id.forces_mae", "test_id force MAE, fine-tuned (meV/Å)"),
    ("zero_shot.valid.energy_rmse", "valid energy RMSE, pretrained (meV/atom)"),
    ("refined.ood_scan.stress_mae", "ood_scan stress MAE, + L-BFGS (GPa)"),
    ("ID:test_id:forces_mae", "test_id (ID) force MAE (meV/Å)"),
    ("property.butane.vibrations.MAE_cm1", "butane vibrations MAE (cm⁻¹)"),
    ("property.Si.eos.B0_GPa.abs", "Si eos B0 |error| (GPa)"),
    ("property.water.md.temperature_mean_K.rel", "water md temperature mean relative error"),
    ("property.water.md.density_g_cm3.model", "water md density model (g/cm³)"),
    ("wall_time_s", "wall time (s)"),
])
def test_human_names_carry_units(key, name):
    assert human(key) == name


def test_units_of_raw_keys():
    assert unit_of("final.id.forces_rmse") == "meV/Å"
    assert unit_of("property.NaCl.phonons.max_abs_THz") == "THz"
    assert unit_of("property.Si.elastic.C44_GPa.rel") == ""
    assert unit_of("forgetting_energy_rms_meV_atom") == "meV/atom"
