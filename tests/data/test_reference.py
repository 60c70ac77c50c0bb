"""The reference calculators: real tblite and pyscf, checked against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from optbench.data.reference import make_calculator, reference_block
from optbench.errors import InputError


def _fd_force(atoms, calc, i, k, h=1e-4):
    e = []
    for s in (h, -h):
        a = atoms.copy()
        a.positions[i, k] += s
        a.calc = calc
        e.append(a.get_potential_energy())
    return -(e[0] - e[1]) / (2 * h)


def test_gfn2_forces_are_minus_energy_gradient():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=3)
    calc = make_calculator(reference_block("GFN2-xTB"))
    atoms.calc = calc
    forces = atoms.get_forces()
    for i, k in [(0, 0), (2, 1), (8, 2)]:
        assert forces[i, k] == pytest.approx(_fd_force(atoms, calc, i, k), abs=2e-4)


def test_gfn1_periodic_stress_is_volume_derivative():
    """ASE sign: stress = (1/V) dE/d(strain); checked by finite strain."""
    atoms = bulk("Si", "diamond", a=5.5)
    calc = make_calculator(reference_block("GFN1-xTB"))
    atoms.calc = calc
    stress = atoms.get_stress(voigt=False)
    h = 1e-4
    e = []
    for s in (h, -h):
        a = atoms.copy()
        a.set_cell(atoms.cell * (1 + s), scale_atoms=True)
        a.calc = calc
        e.append(a.get_potential_energy())
    dE = (e[0] - e[1]) / (2 * h)
    assert np.trace(stress) == pytest.approx(dE / atoms.get_volume(), rel=1e-3, abs=1e-5)


def test_labels_do_not_depend_on_history():
    """A fresh-guess calculator gives the same labels (to round-off) whatever it computed before."""
    calc = make_calculator(reference_block("GFN2-xTB"))
    water = molecule("H2O")
    water.calc = calc
    e1, f1 = water.get_potential_energy(), water.get_forces()
    other = water.copy()
    other.positions[0] += 0.2
    other.calc = calc
    other.get_potential_energy()
    again = water.copy()
    again.calc = calc
    assert again.get_potential_energy() == pytest.approx(e1, abs=1e-9)
    assert np.allclose(again.get_forces(), f1, atol=1e-9, rtol=0)


def test_pyscf_dft_forces_match_finite_differences():
    h2o = molecule("H2O")
    h2o.positions[1] += [0.05, 0.0, 0.02]
    calc = make_calculator(reference_block("pyscf:PBE/sto-3g", basis="sto-3g", grid_level=2))
    h2o.calc = calc
    forces = h2o.get_forces()
    assert np.abs(forces.sum(axis=0)).max() < 5e-3  # translational invariance (up to the DFT grid)
    assert forces[1, 0] == pytest.approx(_fd_force(h2o, calc, 1, 0, h=1e-3), abs=2e-3)


def test_pyscf_rejects_periodic_cells():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True)
    atoms.calc = make_calculator(reference_block("pyscf:PBE/sto-3g", basis="sto-3g"))
    with pytest.raises(InputError, match="finite molecules"):
        atoms.get_potential_energy()


@pytest.mark.parametrize("block", [{"method": "DFTB"}, {}, {"method": "GFN2-xTB", "bogus": 1}])
def test_bad_reference_blocks(block):
    with pytest.raises(InputError):
        if "bogus" in block:
            reference_block("GFN2-xTB", bogus=1)
        else:
            make_calculator(block)
