import numpy as np
import pytest
from ase import units
from ase.build import molecule

from optbench.properties import Vibrations
from optbench.properties.vibrations import is_linear


def direct_hessian_frequencies(atoms, calc, delta=0.01):
    """Frequencies (cm^-1) from a central-difference Hessian of the forces, mass-weighted."""
    atoms = atoms.copy()
    atoms.calc = calc
    n = 3 * len(atoms)
    H = np.zeros((n, n))
    for k in range(n):
        a, i = divmod(k, 3)
        cols = []
        for sign in (1, -1):
            atoms.positions[a, i] += sign * delta
            cols.append(atoms.get_forces().ravel())
            atoms.positions[a, i] -= sign * delta
        H[k] = -(cols[0] - cols[1]) / (2 * delta)
    H = 0.5 * (H + H.T)
    m = np.repeat(atoms.get_masses(), 3)
    eig = np.linalg.eigvalsh(H / np.sqrt(np.outer(m, m)))  # eV / (Å^2 amu)
    omega = np.sign(eig) * np.sqrt(np.abs(eig) * units._e / units._amu) * 1e10  # rad/s
    return omega / (2 * np.pi * units._c * 100)  # cm^-1


def test_water_frequencies_match_direct_hessian(chgnet):
    vib = Vibrations()
    res = vib.calc(molecule("H2O"), chgnet)
    assert res["relax"]["converged"]
    freqs = np.array(res["frequencies_cm1"])
    assert len(freqs) == 3 and not res["linear"] and res["n_imaginary"] == 0
    # bend ~1600, stretches ~3700 cm^-1 for water
    assert 1300 < freqs[0] < 1900 and 3300 < freqs[1] < freqs[2] < 4100
    relaxed = molecule("H2O")
    relaxed.calc = chgnet
    from optbench.properties.base import relax

    relax(relaxed, cell=False, fmax=vib.fmax, steps=vib.relax_steps)
    direct = direct_hessian_frequencies(relaxed, chgnet, delta=vib.delta)
    internal = np.sort(direct[np.argsort(np.abs(direct))[6:]])
    np.testing.assert_allclose(freqs, internal, atol=2.0)
    assert res["zero_point_energy_eV"] == pytest.approx(0.5 * freqs.sum() * units.invcm)


def test_linear_molecule_keeps_3n_minus_5_modes():
    from ase.calculators.emt import EMT

    co2 = molecule("CO2")
    assert is_linear(co2) and not is_linear(molecule("H2O"))
    res = Vibrations(relax_steps=0, relax_ions=False).calc(co2, EMT())
    assert len(res["frequencies_cm1"]) == 4 and len(res["rigid_modes_cm1"]) == 5


def test_compare_matches_modes_by_frequency_order():
    a = {"frequencies_cm1": [3700.0, 1600.0, 3800.0]}
    b = {"frequencies_cm1": [1590.0, 3710.0, 3790.0]}
    cmp = Vibrations.compare(a, b)
    np.testing.assert_allclose(cmp["per_mode_error_cm1"], [10.0, -10.0, 10.0])
    assert cmp["MAE_cm1"] == pytest.approx(10.0)
    as_arrays = Vibrations.compare({"frequencies_cm1": np.array(a["frequencies_cm1"])}, {"frequencies_cm1": np.array(b["frequencies_cm1"])})
    assert as_arrays["MAE_cm1"] == pytest.approx(10.0)
