"""Time optbench's phonon and elastic runs against phonopy and ASE driven directly with the same
calculator and the same settings, in one run, and print the ratios (target <= 1.10).

    OMP_NUM_THREADS=1 python bench/properties_speed.py [--model chgnet|emt] [--repeats 5]

(On a shared CPU, one thread per process avoids oversubscription, which otherwise dominates
the timings.)

The direct baselines do the same work as the property objects (relaxation, displacements or
strains, force constants and their symmetrisation, band path and mesh DOS; stress-strain fits),
so the ratio measures optbench's own overhead. Runs alternate (ours, direct, ours, ...) and the
minimum of each is compared, which is robust to a shared, noisy CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import bulk
from ase.units import GPa
from phonopy import Phonopy
from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath

from optbench.properties import Elastic, Phonons
from optbench.properties.base import relax
from optbench.properties.elastic import voigt_strain_matrix
from optbench.properties.phonons import (
    standard_primitive,
    supercell_matrix,
    to_ase,
    to_phonopy_atoms,
)


def direct_phonons(atoms, calc, s: Phonons):
    """phonopy + ASE by hand, same settings as `s`."""
    atoms = atoms.copy()
    atoms.calc = calc
    relax(atoms, cell=s.relax_cell, fmax=s.fmax, steps=s.relax_steps)
    prim, _ = standard_primitive(atoms, s.symprec)
    ph = Phonopy(to_phonopy_atoms(prim), supercell_matrix=supercell_matrix(prim.cell.array, s.supercell, s.min_length),
                 symprec=s.symprec)
    ph.generate_displacements(distance=s.displacement)
    forces = []
    for sc in ph.supercells_with_displacements:
        a = to_ase(sc)
        a.calc = calc
        forces.append(a.get_forces())
    perfect = to_ase(ph.supercell)
    perfect.calc = calc
    ph.forces = np.array(forces) - perfect.get_forces()[None]
    ph.produce_force_constants()
    ph.symmetrize_force_constants(show_drift=False)
    bands, labels, conns = get_band_qpoints_by_seekpath(ph.primitive, s.band_points)
    ph.run_band_structure(bands, labels=labels, path_connections=conns)
    ph.run_mesh(list(s.mesh), is_gamma_center=True)
    ph.run_total_dos()
    return ph.get_band_structure_dict()


def direct_elastic(atoms, calc, s: Elastic):
    """ASE by hand: relax, strain, relax ions, stress, linear fits; same settings as `s`."""
    atoms = atoms.copy()
    atoms.calc = calc
    relax(atoms, cell=s.relax_cell, fmax=s.fmax, steps=s.relax_steps)
    cell0 = atoms.get_cell().array.copy()
    C = np.zeros((6, 6))
    for j in range(6):
        strains = s.normal_strains if j < 3 else s.shear_strains
        sig = []
        for value in strains:
            strained = atoms.copy()
            strained.calc = calc
            strained.set_cell(cell0 @ (np.eye(3) + voigt_strain_matrix(j, value)), scale_atoms=True)
            if s.relax_ions:
                relax(strained, cell=False, fmax=s.fmax, steps=s.relax_steps)
            sig.append(strained.get_stress(voigt=True) / GPa)
        C[:, j] = np.polyfit(np.array(strains), np.array(sig), 1)[0]
    return (C + C.T) / 2


def best_of(fn, repeats_log: list[float]) -> None:
    t = time.perf_counter()
    fn()
    repeats_log.append(time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="chgnet", help="chgnet (Si diamond) or emt (Cu fcc)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    if args.model == "emt":
        from ase.calculators.emt import EMT

        calc, atoms = EMT(), bulk("Cu", "fcc", a=3.6)
    else:
        from optbench.backbones import load_calculator

        calc, atoms = load_calculator(args.model), bulk("Si", "diamond", a=5.43)
    ph_settings = Phonons(mesh=(12, 12, 12), band_points=51)
    el_settings = Elastic()
    cases = {
        "phonons": (lambda: ph_settings.calc(atoms, calc), lambda: direct_phonons(atoms, calc, ph_settings)),
        "elastic": (lambda: el_settings.calc(atoms, calc), lambda: direct_elastic(atoms, calc, el_settings)),
    }
    # same numbers first (the comparison is only fair if both do the same work)
    calc.reset()
    ours_c = np.array(el_settings.calc(atoms, calc)["C_GPa"])
    calc.reset()
    direct_c = direct_elastic(atoms, calc, el_settings)
    print(f"elastic tensor max |ours - direct| = {np.abs(ours_c - direct_c).max():.2e} GPa")
    print(f"{'property':10s} {'ours (s)':>10s} {'direct (s)':>11s} {'ratio':>7s}")
    for name, (ours, direct) in cases.items():
        t_ours, t_direct = [], []
        for _ in range(args.repeats):
            calc.reset()
            best_of(ours, t_ours)
            calc.reset()
            best_of(direct, t_direct)
        ratio = min(t_ours) / min(t_direct)
        flag = "ok" if ratio <= 1.10 else "SLOW"
        print(f"{name:10s} {min(t_ours):10.2f} {min(t_direct):11.2f} {ratio:7.3f}  {flag}  ({args.model}, {len(atoms)}-atom cell, best of {args.repeats})")


if __name__ == "__main__":
    main()
