"""The shipped crystal references: converged plane-wave DFT, physically sound, next to published values."""

from __future__ import annotations

import pytest
from ase.io import read

from optbench.data import load_manifest, suite_path

CRYSTALS = ("Si", "NaCl", "Al")
ATOMS_PER_CUBE = {"Si": 8, "NaCl": 8, "Al": 4}
# Published PBEsol lattice constants (Å) and bulk moduli (GPa): Tran, Stelzl, Blaha, JCP 144, 204120 (2016)
# and Haas, Tran, Blaha, PRB 79, 085104 (2009); tolerances cover the spread between codes and setups.
PBESOL = {"Si": (5.435, 93.0), "NaCl": (5.60, 27.0), "Al": (4.01, 82.0)}


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(suite_path("crystal"))


def test_reference_is_converged_plane_wave_dft(manifest):
    """Every label is within the record's tolerances of a denser setting, or withheld from that
    crystal's frames and properties with the measured reason (issue #12: Si and NaCl fully converged)."""
    ref = manifest["reference"]
    assert ref["code"] == "gpaw" and ref["code_version"] and ref["xc"] == "PBEsol"  # not the backbones' PBE
    assert ref["ecut_eV"] >= 300 and ref["kpoint_density_per_A"] >= 2.0
    conv = ref["convergence"]
    denser = conv["denser_setting"]
    assert denser["ecut_eV"] > ref["ecut_eV"] and denser["kpoint_density_per_A"] > ref["kpoint_density_per_A"]
    tol = conv["tolerances"]
    assert tol["energy_meV_per_atom"] <= 1.0 and tol["forces_meV_per_A"] <= 10.0 and tol["stress_GPa"] <= 0.2
    assert {f["formula"] for f in conv["frames"]} >= {"Si2", "ClNa", "Al2"}  # every crystal is represented
    withheld = manifest.get("withheld", {})
    by_formula = {"Si2": "Si", "ClNa": "NaCl", "Al2": "Al"}
    for frame in conv["frames"]:
        name = by_formula[frame["formula"]]
        for key, label in (("energy_meV_per_atom", "energy"), ("forces_meV_per_A", "forces"), ("stress_GPa", "stress")):
            if frame[key] > tol[key]:
                assert label in withheld[name]["labels"] and f"{frame[key]:.3g}" in withheld[name]["reason"], (name, key)
    assert set(withheld) <= {"Al"}, withheld  # the gapped crystals are converged in every label
    assert conv["converged"] is (not withheld)


def test_withheld_labels_are_absent_from_the_frames(manifest):
    folder = suite_path("crystal")
    withheld = manifest.get("withheld", {})
    seen = set()
    for split in manifest["splits"].values():
        for frame in read(folder / split["file"], index=":"):
            struct = frame.info["structure"]
            seen.add(struct)
            for label in ("energy", "forces", "stress"):
                assert (label in frame.calc.results) is (label not in withheld.get(struct, {}).get("labels", [])), struct
    assert seen == {*CRYSTALS, "NaCl_B2"}
    for name, entry in withheld.items():
        assert not set(entry["properties"]) & set(manifest["reference_properties"].get(name, {}))


def test_every_crystal_reference_is_physical(manifest):
    """Si, NaCl and Al: Born stability (where the elastic reference is not withheld), B0' between 3 and 6,
    no imaginary phonon below -0.1 THz at equilibrium; Si and NaCl carry their elastic reference."""
    refs = manifest["reference_properties"]
    assert "elastic" in refs["Si"] and "elastic" in refs["NaCl"]
    for name in CRYSTALS:
        _check_physical(refs[name])


def _check_physical(props):
    assert 3.0 <= props["eos"]["B0_prime"] <= 6.0
    ph = props["phonons"]
    assert ph["min_frequency_THz"] >= -0.1 and not ph["has_imaginary"]
    if "elastic" not in props:
        return
    el = props["elastic"]
    c11, c12, c44 = el["C11"], el["C12"], el["C44"]
    assert c11 - c12 > 0 and c11 + 2 * c12 > 0 and c44 > 0, (c11, c12, c44)  # cubic Born criteria
    assert el["positive_definite"] and min(el["eigenvalues_GPa"]) > 0
    # the bulk modulus from the EOS and from the elastic tensor are one quantity
    assert props["eos"]["B0_GPa"] == pytest.approx((c11 + 2 * c12) / 3, rel=0.05)


def test_crystal_references_match_published_pbesol(manifest):
    for name, (a_pub, b_pub) in PBESOL.items():
        eos = manifest["reference_properties"][name]["eos"]
        a0 = (ATOMS_PER_CUBE[name] * eos["V0_per_atom_A3"]) ** (1 / 3)
        assert a0 == pytest.approx(a_pub, rel=0.006), (name, a0)
        assert eos["B0_GPa"] == pytest.approx(b_pub, rel=0.12), name
