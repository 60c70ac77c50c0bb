"""The plane-wave DFT reference (GPAW, PBEsol): a real 2-atom Si cell at low settings, checked against
finite differences, and the convergence record that judges a setting."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from optbench.data.gpaw_ref import GPAWReference, convergence_record, kpoint_grid
from optbench.data.reference import make_calculator, reference_block
from optbench.properties.elastic import voigt_strain_matrix

LOW = {"ecut_eV": 200.0, "kpoint_density_per_A": 1.0}  # seconds per call; checks the code path, not the physics


@pytest.fixture(scope="module")
def si():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] += [0.03, -0.02, 0.01]  # off the symmetric site: forces and shear stress are not zero
    return atoms


def test_reference_block_says_how_to_recompute():
    block = reference_block("gpaw")
    assert block["code"] == "gpaw" and block["xc"] == "PBEsol" and block["method"] == "DFT-PBEsol"
    assert block["code_version"] and block["ecut_eV"] > 0 and block["kpoint_density_per_A"] > 0
    assert reference_block("DFT-PBEsol", ecut_eV=500.0)["ecut_eV"] == 500.0
    assert isinstance(make_calculator(block), GPAWReference)


def test_kpoint_grid_follows_the_density(si):
    assert kpoint_grid(si, 1.2) == [3, 3, 3] and kpoint_grid(si * (2, 2, 2), 1.2) == [2, 2, 2]
    calc = make_calculator(reference_block("gpaw", **LOW))
    calc.kpts(si)
    strained = si.copy()
    strained.set_cell(si.cell * 1.3, scale_atoms=True)
    assert calc.kpts(strained) == calc.kpts(si)  # one grid for a strain series of the same cell


def _strained_energy(atoms, calc, j, h):
    a = atoms.copy()
    a.set_cell(atoms.cell.array @ (np.eye(3) + voigt_strain_matrix(j, h)), scale_atoms=True)
    a.calc = calc
    return a.get_potential_energy()


def test_stress_and_forces_are_energy_derivatives(si):
    """ASE sign: stress_j = (1/V) dE/d(strain_j); forces = -dE/dx; both by central differences."""
    calc = make_calculator(reference_block("gpaw", **LOW))
    atoms = si.copy()
    atoms.calc = calc
    stress, forces = atoms.get_stress(voigt=True), atoms.get_forces()
    assert np.abs(forces.sum(axis=0)).max() < 1e-3  # no net force
    assert np.abs(forces).max() > 0.1 and abs(stress[5]) > 1e-4  # the checks below are not 0 == 0
    h = 2e-3
    j = 5  # shear xy (engineering strain): the component the internal displacement makes non-zero
    fd = (_strained_energy(si, calc, j, h) - _strained_energy(si, calc, j, -h)) / (2 * h) / si.get_volume()
    assert stress[j] == pytest.approx(fd, abs=2e-4)  # eV/Å^3 (2e-4 eV/Å^3 = 0.03 GPa)
    d = 1e-3
    e = []
    for s in (d, -d):
        a = si.copy()
        a.positions[1, 0] += s
        a.calc = calc
        e.append(a.get_potential_energy())
    assert forces[1, 0] == pytest.approx(-(e[0] - e[1]) / (2 * d), abs=2e-3)  # eV/Å


def test_convergence_record_flags_an_unconverged_setting(si):
    base = bulk("Si", "diamond", a=5.43)
    record = convergence_record([(si, base)], reference_block("gpaw", ecut_eV=200.0, kpoint_density_per_A=0.8),
                                denser={"ecut_eV": 300.0, "kpoint_density_per_A": 1.2})
    assert record["converged"] is False
    worst = record["max"]
    assert worst["energy_meV_per_atom"] > record["tolerances"]["energy_meV_per_atom"]
    assert set(worst) == {"energy_meV_per_atom", "energy_shift_meV_per_atom", "forces_meV_per_A", "stress_GPa"}
    assert record["frames"][0]["n_atoms"] == 2


def test_reused_wavefunctions_give_the_fresh_numbers(si):
    """Relaxations and property series keep one GPAW object (wavefunction_restart); labels never do. Across a position change and a cell change the numbers equal a fresh
    calculation's on the same k-point grid (the grid of the series' first cell)."""
    reused = make_calculator({**reference_block("gpaw", **LOW), "wavefunction_restart": True})
    moved = si.copy()
    moved.positions[0] += [0.02, 0.0, -0.01]
    strained = moved.copy()
    strained.set_cell(moved.cell * 1.01, scale_atoms=True)
    live = []
    for atoms in (si, moved, strained):
        a, b = atoms.copy(), atoms.copy()
        fresh = make_calculator(reference_block("gpaw", **LOW))
        fresh.kpts(si)  # the series' grid, as the reused calculator keeps it
        a.calc, b.calc = reused, fresh
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-4)
        assert np.abs(a.get_forces() - b.get_forces()).max() < 1e-3
        assert np.abs(a.get_stress() - b.get_stress()).max() < 1e-5
        live.append(reused._live[1])
    assert live[0] is live[1] is live[2]  # one GPAW object through the series


def test_a_reused_calculator_survives_a_geometry_of_lower_symmetry():
    """Phonon displacements of a rocksalt supercell: the second displaced atom breaks the symmetry GPAW
    set up for the first (SymmetryBrokenError); the reference starts afresh, same numbers as fresh."""
    nacl = bulk("NaCl", "rocksalt", a=5.6, cubic=True)
    first, second = nacl.copy(), nacl.copy()
    first.positions[0] += [0.02, 0.0, 0.0]
    second.positions[1] += [0.0, 0.0, 0.02]
    reused = make_calculator({**reference_block("gpaw", **LOW), "wavefunction_restart": True})
    for atoms in (first, second):
        a, b = atoms.copy(), atoms.copy()
        fresh = make_calculator(reference_block("gpaw", **LOW))
        fresh.kpts(nacl)
        a.calc, b.calc = reused, fresh
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-4)
        assert np.abs(a.get_forces() - b.get_forces()).max() < 1e-3
