import numpy as np
import pytest
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

from optbench.errors import InputError
from optbench.io import write_artefacts
from optbench.properties import Phonons


def test_chgnet_silicon_acoustic_sum_rule_and_files(chgnet, tmp_path):
    res, files = Phonons(mesh=(6, 6, 6), band_points=21).calc_with_artefacts(bulk("Si", "diamond", a=5.43), chgnet)
    assert set(files) == {"band.yaml", "band.png", "dos.png"} and not list(tmp_path.iterdir())  # calc writes nothing
    write_artefacts(tmp_path, files)
    assert res["gamma_acoustic_max_abs_THz"] < 0.05
    gamma = np.array(res["high_symmetry_THz"]["GAMMA"])
    assert len(gamma) == 6
    assert gamma[3:].min() > 11.0 and gamma[3:].max() < 17.0  # Si optical at Gamma: 15.5 THz (experiment)
    assert np.ptp(gamma[3:]) < 0.05  # triply degenerate optical mode of diamond
    assert not res["has_imaginary"] and res["min_frequency_THz"] > -0.05
    assert {"X", "L"} <= set(res["high_symmetry_THz"])
    band = yaml.safe_load((tmp_path / "band.yaml").read_text())
    assert band["nqpoint"] == sum(len(seg) for seg in res["band"]["distances"])
    assert len(band["phonon"][0]["band"]) == 6
    assert (tmp_path / "band.png").stat().st_size > 1000 and (tmp_path / "dos.png").stat().st_size > 1000
    # DOS integrates to 3 N modes per primitive cell
    assert np.trapezoid(res["dos"]["dos"], res["dos"]["frequency_THz"]) == pytest.approx(6, rel=0.05)


def test_conventional_and_primitive_input_give_the_same_phonons():
    """The seekpath standard primitive makes the path labels independent of the input cell."""
    prim = Phonons(mesh=(4, 4, 4), band_points=11).calc(bulk("Cu", "fcc", a=3.6), EMT())
    conv = Phonons(mesh=(4, 4, 4), band_points=11).calc(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())
    assert set(prim["high_symmetry_THz"]) == set(conv["high_symmetry_THz"])
    for label, freqs in prim["high_symmetry_THz"].items():
        np.testing.assert_allclose(conv["high_symmetry_THz"][label], freqs, atol=1e-3)
    # EMT copper at X: transverse below longitudinal, both in the 4-9 THz range (experiment 5.1 / 7.3)
    x = np.array(prim["high_symmetry_THz"]["X"])
    assert 4 < x[0] < x[2] < 9
    cmp = Phonons.compare(conv, prim)
    assert cmp["high_symmetry_MAE_THz"] < 1e-3


def test_unstable_lattice_has_imaginary_modes():
    """bcc copper (EMT) is dynamically unstable: the flag must say so."""
    res = Phonons(mesh=(4, 4, 4), band_points=11, relax_cell=True).calc(bulk("Cu", "bcc", a=2.87), EMT())
    assert res["has_imaginary"] and res["min_frequency_THz"] < -0.5
    assert res["gamma_acoustic_max_abs_THz"] < 0.05


def test_phonons_reject_bad_supercell_when_built():
    with pytest.raises(InputError, match="field 'supercell'"):
        Phonons(supercell=(2, 2))
    with pytest.raises(InputError, match="field 'mesh'"):
        Phonons(mesh=(4, 0, 4))
