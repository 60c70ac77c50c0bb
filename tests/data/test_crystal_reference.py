"""The shipped crystal references: converged plane-wave DFT, physically sound, next to published values."""

from __future__ import annotations

import pytest

from optbench.data import load_manifest, suite_path

CRYSTALS = ("Si", "NaCl", "Al")
ATOMS_PER_CUBE = {"Si": 8, "NaCl": 8, "Al": 4}
# Published PBEsol lattice constants (Å) and bulk moduli (GPa): Tran, Stelzl, Blaha, JCP 144, 204120 (2016)
# and Haas, Tran, Blaha, PRB 79, 085104 (2009); tolerances cover the spread between codes and setups.
PBESOL = {"Si": (5.435, 93.0), "NaCl": (5.60, 27.0), "Al": (4.01, 82.0)}


_SHIPPED = load_manifest(suite_path("crystal"))
# Issue #12: until `optbench data generate crystal --size small` is rerun with the GPAW reference, the shipped
# set is the Gamma-point GFN1-xTB one, which fails these checks (no Si elastic reference, Si B0' = 8.4).
# strict: the day the shipped set is DFT these run as ordinary tests; an xTB set that passed would be an error.
pending_regeneration = pytest.mark.xfail(_SHIPPED["reference"].get("code") != "gpaw", strict=True,
                                         reason="shipped crystal set is still GFN1-xTB (issue #12: regenerate with GPAW)")
pytestmark = pending_regeneration


@pytest.fixture(scope="module")
def manifest():
    return _SHIPPED


def test_reference_is_converged_plane_wave_dft(manifest):
    ref = manifest["reference"]
    assert ref["code"] == "gpaw" and ref["code_version"] and ref["xc"] == "PBEsol"  # not the backbones' PBE
    assert ref["ecut_eV"] >= 300 and ref["kpoint_density_per_A"] >= 2.0
    conv = ref["convergence"]
    denser = conv["denser_setting"]
    assert denser["ecut_eV"] > ref["ecut_eV"] and denser["kpoint_density_per_A"] > ref["kpoint_density_per_A"]
    tol = conv["tolerances"]
    assert tol["energy_meV_per_atom"] <= 1.0 and tol["forces_meV_per_A"] <= 10.0 and tol["stress_GPa"] <= 0.2
    assert {f["formula"] for f in conv["frames"]} >= {"Si2", "ClNa", "Al2"}  # every crystal is represented
    for key, limit in tol.items():
        assert all(f[key] <= limit for f in conv["frames"]), key
    assert conv["converged"] is True


def test_every_crystal_reference_is_physical(manifest):
    """Si, NaCl and Al: Born stability, B0' between 3 and 6, no imaginary phonon below -0.1 THz at equilibrium."""
    for name in CRYSTALS:
        _check_physical(manifest["reference_properties"][name])


def _check_physical(props):
    el = props["elastic"]
    c11, c12, c44 = el["C11"], el["C12"], el["C44"]
    assert c11 - c12 > 0 and c11 + 2 * c12 > 0 and c44 > 0, (c11, c12, c44)  # cubic Born criteria
    assert el["positive_definite"] and min(el["eigenvalues_GPa"]) > 0
    assert 3.0 <= props["eos"]["B0_prime"] <= 6.0
    ph = props["phonons"]
    assert ph["min_frequency_THz"] >= -0.1 and not ph["has_imaginary"]
    # the bulk modulus from the EOS and from the elastic tensor are one quantity
    assert props["eos"]["B0_GPa"] == pytest.approx((c11 + 2 * c12) / 3, rel=0.05)


def test_crystal_references_match_published_pbesol(manifest):
    for name, (a_pub, b_pub) in PBESOL.items():
        eos = manifest["reference_properties"][name]["eos"]
        a0 = (ATOMS_PER_CUBE[name] * eos["V0_per_atom_A3"]) ** (1 / 3)
        assert a0 == pytest.approx(a_pub, rel=0.006), (name, a0)
        assert eos["B0_GPa"] == pytest.approx(b_pub, rel=0.12), name
