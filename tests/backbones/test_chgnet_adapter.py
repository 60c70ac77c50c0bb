"""CHGNet adapter on the real pretrained model: forces and stress against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.io import read

from optbench.backbones import load_backbone, load_calculator


@pytest.fixture(scope="module")
def chgnet():
    return load_backbone("chgnet")


def test_forces_are_minus_energy_gradient_molecule(chgnet, ethanol_small):
    atoms = read(ethanol_small["train"], index=0)
    atoms.calc = chgnet.calculator()
    forces = atoms.get_forces()
    d = 2e-3
    for i, k in [(0, 0), (2, 1), (8, 2)]:
        pos = atoms.positions.copy()
        atoms.positions[i, k] += d
        e_plus = atoms.get_potential_energy()
        atoms.positions[i, k] -= 2 * d
        e_minus = atoms.get_potential_energy()
        atoms.positions = pos
        assert -(e_plus - e_minus) / (2 * d) == pytest.approx(forces[i, k], abs=0.02)


def test_stress_matches_strain_derivative(chgnet):
    si = bulk("Si", "diamond", 5.43)
    si.rattle(0.05, seed=3)
    si.calc = chgnet.calculator()
    stress = si.get_stress(voigt=False)
    cell, vol, eps = si.cell.copy(), si.get_volume(), 2e-3
    for a, b in [(0, 0), (2, 2), (0, 1)]:
        strain = np.zeros((3, 3))
        strain[a, b] = strain[b, a] = eps / (2 if a != b else 1)
        energies = []
        for sign in (1, -1):
            si.set_cell(cell @ (np.eye(3) + sign * strain), scale_atoms=True)
            energies.append(si.get_potential_energy())
        si.set_cell(cell, scale_atoms=True)
        fd = (energies[0] - energies[1]) / (2 * eps) / vol
        assert fd == pytest.approx(stress[a, b], abs=2e-3)  # eV/Å^3 (0.3 GPa)


def test_calculator_agrees_with_chgnet_own(chgnet):
    from chgnet.model.dynamics import CHGNetCalculator

    si = bulk("Si", "diamond", 5.43) * (2, 1, 1)
    si.rattle(0.03, seed=1)
    ours = si.copy()
    ours.calc = load_calculator("chgnet")
    theirs = si.copy()
    theirs.calc = CHGNetCalculator(verbose=False)
    assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(), abs=1e-4)
    np.testing.assert_allclose(ours.get_forces(), theirs.get_forces(), atol=1e-4)
    np.testing.assert_allclose(ours.get_stress(), theirs.get_stress(), atol=1e-5)


def test_unknown_model_spec_is_a_clear_error():
    from optbench.errors import InputError

    with pytest.raises(InputError, match="unknown model"):
        load_backbone("nosuchnet")
