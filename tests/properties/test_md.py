import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones

from optbench.properties import MD
from optbench.properties.dynamics import diffusion_coefficient, msd_curve


def argon():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)  # 108 atoms


def lj():
    return LennardJones(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=True)


def test_lj_argon_nve_drift_and_structure(tmp_path):
    md = MD(temperature_K=60, timestep_fs=5.0, nvt_steps=200, equilibration_steps=50, nve_steps=200, progress=False)
    res = md.calc(argon(), lj(), out=tmp_path)
    assert res["stable"] and res["verdict"] == "stable" and res["failure"] is None and res["steps_done"] == 400
    # stated bound: |NVE drift| < 0.5 meV/atom/ps over 1 ps with a 5 fs step
    assert abs(res["nve_drift_meV_per_atom_per_ps"]) < 0.5
    assert res["nve_fluctuation_meV_per_atom"] < 0.5
    assert res["density_g_cm3"] == pytest.approx(4 * 39.948 / 5.26**3 * 1.66053906660, rel=1e-6)
    assert res["rdf_first_peak_A"] == pytest.approx(5.26 / np.sqrt(2), abs=0.15)  # fcc nearest neighbour
    assert 30 < res["temperature_mean_K"] < 90
    assert res["diffusion_A2_per_ps"] < 0.05  # a solid at 60 K barely diffuses
    assert (tmp_path / "rdf.png").is_file() and (tmp_path / "msd.png").is_file()


def test_chgnet_silicon_short_nve_is_stable(chgnet):
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    res = MD(nvt_steps=20, equilibration_steps=0, nve_steps=60, sample_every=5, progress=False).calc(si, chgnet)
    assert res["stable"]
    # stated bound: |drift| < 10 meV/atom/ps over 60 fs of NVE with a 1 fs step (float32 model)
    assert abs(res["nve_drift_meV_per_atom_per_ps"]) < 10


def test_same_seed_same_numbers_and_different_seed_differs():
    kw = dict(temperature_K=60, timestep_fs=5.0, nvt_steps=40, equilibration_steps=0, nve_steps=0, progress=False)
    a = MD(seed=1, **kw).calc(argon(), lj())
    b = MD(seed=1, **kw).calc(argon(), lj())
    c = MD(seed=2, **kw).calc(argon(), lj())
    np.testing.assert_array_equal(a["thermo"]["etotal_eV"], b["thermo"]["etotal_eV"])
    assert not np.allclose(a["thermo"]["etotal_eV"], c["thermo"]["etotal_eV"])


def test_atoms_too_close_stops_at_once():
    dimer = Atoms("Ar2", positions=[[0, 0, 0], [0.5, 0, 0]], cell=[10, 10, 10], pbc=True)
    res = MD(nvt_steps=100, nve_steps=100, progress=False).calc(dimer, lj())
    assert not res["stable"] and res["failure"].startswith("atoms too close") and res["steps_done"] == 0
    assert res["verdict"] == "atoms_too_close"


def test_too_long_timestep_explodes_and_stops_early():
    """Velocity Verlet with a 36 fs step on EMT copper (period ~0.15 ps) heats up without bound."""
    from ase.calculators.emt import EMT

    res = MD(temperature_K=300, timestep_fs=36.0, nvt_steps=0, nve_steps=400, sample_every=1, progress=False).calc(
        bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), EMT()
    )
    assert not res["stable"] and res["failure"].startswith("explosion") and res["verdict"] == "explosion"
    assert res["steps_done"] < 50


def test_free_molecule_breaks_bonds():
    """With (almost) no interactions the atoms of water fly apart: bonds break, the run stops."""
    free = LennardJones(sigma=0.1, epsilon=1e-8, rc=0.3)
    res = MD(temperature_K=1000, nvt_steps=0, nve_steps=500, progress=False).calc(molecule("H2O"), free)
    assert not res["stable"] and res["verdict"] == "broken_bonds"
    assert res["steps_done"] < 500


def test_msd_recovers_the_diffusion_coefficient_of_a_random_walk():
    rng = np.random.default_rng(0)
    D, dt = 0.5, 10.0  # Å^2/ps, fs
    steps = rng.normal(scale=np.sqrt(2 * D * 1e-3 * dt), size=(400, 200, 3))  # per-dimension variance 2 D dt
    pos = np.cumsum(steps, axis=0)
    lag, msd = msd_curve(np.arange(400) * dt, pos)
    assert diffusion_coefficient(lag, msd, 3) == pytest.approx(D, rel=0.1)
    lag2, msd2 = msd_curve(np.arange(400) * dt, pos, dims=(0, 1))
    assert diffusion_coefficient(lag2, msd2, 2) == pytest.approx(D, rel=0.1)


def test_compare_reports_rdf_and_density_errors():
    r = np.linspace(0.1, 6, 60)
    ref = {"rdf": {"r_A": r, "g": np.exp(-((r - 3) ** 2))}, "density_g_cm3": 1.0, "stable": True}
    mod = {"rdf": {"r_A": r, "g": np.exp(-((r - 3) ** 2)) + 0.1}, "density_g_cm3": 1.1, "stable": True}
    cmp = MD.compare(mod, ref)
    assert cmp["rdf_mean_abs_diff"] == pytest.approx(0.1)
    assert cmp["density_g_cm3"]["abs"] == pytest.approx(0.1)
