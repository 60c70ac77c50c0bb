"""A label the convergence record does not support is withheld from that crystal's frames and
reference properties, with the measured reason; everything converged is kept."""

from __future__ import annotations

import shutil

import numpy as np
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from optbench.data.manifest import sha256_file
from optbench.data.withhold import unconverged, withhold_unconverged
from optbench.io import read_json, write_json

TOL = {"energy_meV_per_atom": 1.0, "forces_meV_per_A": 10.0, "stress_GPa": 0.2}
DENSER = {"ecut_eV": 500.0, "kpoint_density_per_A": 5.5}


def _frame(formula, e, f, s):
    return {"formula": formula, "n_atoms": 2, "energy_meV_per_atom": e, "forces_meV_per_A": f, "stress_GPa": s,
            "energy_shift_meV_per_atom": 9.0}


RECORD = {"tolerances": TOL, "denser_setting": DENSER,
          "frames": [_frame("Si2", 0.16, 9.7, 0.02), _frame("ClNa", 0.01, 0.3, 0.006), _frame("Al2", 0.26, 1.8, 0.73)]}


def test_only_the_missed_label_of_the_matching_composition_is_withheld():
    out = unconverged(RECORD, {"Si": {"Si"}, "NaCl": {"Na", "Cl"}, "NaCl_B2": {"Na", "Cl"}, "Al": {"Al"}})
    assert list(out) == ["Al"] and out["Al"]["labels"] == ["stress"]
    assert "stress changes by 0.73 GPa" in out["Al"]["reason"] and "tolerance 0.2" in out["Al"]["reason"]
    worse = {**RECORD, "frames": [_frame("ClNa", 2.0, 11.0, 0.0)]}
    both = unconverged(worse, {"NaCl": {"Na", "Cl"}, "NaCl_B2": {"Na", "Cl"}})
    assert both["NaCl"]["labels"] == ["energy", "forces"] == both["NaCl_B2"]["labels"]  # a polymorph shares it


def _labelled(atoms, structure, rng):
    atoms = atoms.copy()
    atoms.info["structure"] = structure
    atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()), forces=rng.normal(size=(len(atoms), 3)),
                                       stress=rng.normal(size=6))
    return atoms


def test_withholding_rewrites_frames_manifest_and_property_plan(tmp_path):
    rng = np.random.default_rng(0)
    si, al = bulk("Si", "diamond", a=5.43), bulk("Al", "fcc", a=4.02)
    (tmp_path / "structures").mkdir()
    write(tmp_path / "structures" / "Si.extxyz", si)
    write(tmp_path / "structures" / "Al.extxyz", al)
    frames = [_labelled(si, "Si", rng), _labelled(al * (2, 1, 1), "Al", rng), _labelled(si, "Si", rng)]
    write(tmp_path / "train.extxyz", frames)
    man = {"reference": {"convergence": RECORD}, "structures": {"Si": "structures/Si.extxyz", "Al": "structures/Al.extxyz"},
           "splits": {"train": {"file": "train.extxyz", "tag": "train", "count": 3, "sha256": sha256_file(tmp_path / "train.extxyz")}},
           "property_settings": {"Si": {"eos": {}, "elastic": {}}, "Al": {"eos": {}, "elastic": {}, "phonons": {}}},
           "reference_properties": {"Al": {"elastic": {"C11": 1.0}}}}
    write_json(tmp_path / "manifest.json", man)
    withhold_unconverged(tmp_path)
    again = shutil.copytree(tmp_path, tmp_path.parent / "again")
    withhold_unconverged(again)  # idempotent
    for folder in (tmp_path, again):
        new = read_json(folder / "manifest.json")
        assert new["withheld"]["Al"]["labels"] == ["stress"] and new["withheld"]["Al"]["properties"] == ["elastic"]
        assert new["property_settings"] == {"Si": {"eos": {}, "elastic": {}}, "Al": {"eos": {}, "phonons": {}}}
        assert new["reference_properties"]["Al"] == {}
        assert new["splits"]["train"]["sha256"] == sha256_file(folder / "train.extxyz")
        back = read(folder / "train.extxyz", index=":")
        for before, after in zip(frames, back):
            has_stress = "stress" in after.calc.results
            assert has_stress == (before.info["structure"] == "Si")
            assert after.get_potential_energy() == before.get_potential_energy()
            assert np.allclose(after.get_forces(), before.get_forces())
