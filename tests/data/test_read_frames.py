"""Reading labels under any key name, including ASE's SinglePointCalculator habit."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from optbench.data.io import LabelKeys, read_frames
from optbench.errors import InputError


def _si(seed=0):
    si = bulk("Si", "diamond", 5.43)
    si.rattle(0.02, seed=seed)
    return si


def test_calculator_keys_and_custom_keys(tmp_path):
    a = _si()
    f = np.arange(6.0).reshape(2, 3)
    s = np.array([1, 2, 3, 4, 5, 6]) * 1e-3
    a.calc = SinglePointCalculator(a, energy=-10.0, forces=f, stress=s)
    b = _si(1)
    b.info["REF_energy"] = -11.0
    b.arrays["REF_forces"] = -f
    b.info["REF_virial"] = np.eye(3).reshape(-1) * 0.5
    write(tmp_path / "a.xyz", [a], format="extxyz")
    write(tmp_path / "b.xyz", [b], format="extxyz")
    (fa,) = read_frames(tmp_path / "a.xyz")
    assert fa.energy == -10.0
    np.testing.assert_allclose(fa.forces, f)
    assert fa.stress[1, 2] == pytest.approx(4e-3) and fa.stress[0, 1] == pytest.approx(6e-3)
    (fb,) = read_frames(tmp_path / "b.xyz", LabelKeys(energy="REF_energy", forces="REF_forces", virial="REF_virial"))
    assert fb.energy == -11.0
    np.testing.assert_allclose(fb.forces, -f)
    np.testing.assert_allclose(fb.stress, -np.eye(3) * 0.5 / b.get_volume())


def test_missing_energy_names_file_and_field(tmp_path):
    write(tmp_path / "x.xyz", [_si()], format="extxyz")
    with pytest.raises(InputError) as err:
        read_frames(tmp_path / "x.xyz", LabelKeys(energy="dft_energy"))
    assert str(tmp_path / "x.xyz") in str(err.value) and "dft_energy" in str(err.value)
