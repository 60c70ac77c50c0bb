import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones

from optbench.io import write_artefacts
from optbench.properties import MD
from optbench.properties.dynamics import block_average, diffusion_fit
from optbench.properties.md import first_peak


def argon():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat(3)  # 108 atoms


def small_argon():
    return bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)  # 32 atoms


def lj():
    return LennardJones(sigma=3.4, epsilon=0.0104, rc=8.5, smooth=True)


def test_lj_argon_nve_drift_and_structure(tmp_path):
    md = MD(temperature_K=60, timestep_fs=5.0, nvt_steps=200, equilibration_steps=200, equilibration_block_steps=50,
            nve_steps=200, progress=False)
    res, files = md.calc_with_artefacts(argon(), lj())
    assert res["stable"] and res["verdict"] == "stable" and res["failure"] is None
    # stated bound: |NVE drift| < 0.5 meV/atom/ps over 1 ps with a 5 fs step
    assert abs(res["nve_drift_meV_per_atom_per_ps"]) < 0.5
    assert res["nve_fluctuation_meV_per_atom"] < 0.5
    # an NVT box's density is its input: not reported
    assert res["density_g_cm3"] is None and "no NPT run" in res["density_g_cm3_reason"]
    assert res["rdf"]["r_A"][np.argmax(res["rdf"]["g"])] == pytest.approx(5.26 / np.sqrt(2), abs=0.15)  # fcc neighbour
    assert res["rdf_OO"] is None and "no O-O pairs" in res["rdf_OO_reason"]
    assert res["equilibrated"] and res["equilibration"]["steps"] < 200  # stops once stable
    assert abs(res["temperature_mean_K"] - 60) < 10 + 3 * res["temperature_mean_K_err"]
    assert res["temperature_ok"] == (res["temperature_flag"] is None)
    # 1 ps of production is shorter than 2 x (0.25 + 1) ps of lags: no diffusion coefficient
    assert res["diffusion_A2_per_ps"] is None and res["diffusion_A2_per_ps_reason"].startswith("run 1.00 ps < 2 x 1.25 ps")
    assert set(files) == {"rdf.png", "msd.png"} and not list(tmp_path.iterdir())  # calc writes nothing
    write_artefacts(tmp_path, files)
    assert (tmp_path / "rdf.png").stat().st_size > 1000 and (tmp_path / "msd.png").stat().st_size > 1000


def test_solid_argon_does_not_diffuse_and_says_so():
    """A solid's MSD plateaus: over a long enough run the fit window is there, but not diffusive."""
    res = MD(temperature_K=60, timestep_fs=10.0, nvt_steps=250, equilibration_steps=0, nve_steps=0,
             diffusion_min_lag_fs=200, diffusion_window_fs=1000, sample_every=10, progress=False).calc(small_argon(), lj())
    assert res["diffusion_A2_per_ps"] is None
    assert res["diffusion_A2_per_ps_reason"].startswith("MSD not diffusive")
    assert not res["equilibrated"]  # no equilibration phase: recorded, not hidden


def test_too_short_equilibration_is_flagged():
    """Cold start (equipartition halves the kinetic temperature): 20 steps cannot reach 300 K stably."""
    res = MD(temperature_K=300, timestep_fs=5.0, equilibration_steps=20, equilibration_block_steps=10,
             equilibration_tolerance_K=2.0, nvt_steps=40, nve_steps=0, friction_per_fs=1e-4,
             production_friction_per_fs=1e-4, progress=False).calc(small_argon(), lj())
    assert not res["equilibrated"] and res["equilibration"]["steps"] == 20
    assert not res["temperature_ok"] and res["temperature_flag"].startswith("mean ")


def test_npt_density_of_emt_copper_from_a_compressed_box():
    """NPT (Langevin-BAOAB barostat at 1 bar) expands a 4 % compressed EMT copper box to EMT's own
    density, which the NVT box (its input) does not have."""
    from ase.calculators.emt import EMT
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    relaxed = bulk("Cu", "fcc", a=3.6, cubic=True)
    relaxed.calc = EMT()
    BFGS(FrechetCellFilter(relaxed), logfile=None).run(fmax=1e-4)
    rho0 = 4 * 63.546 / relaxed.get_volume() * 1.66053906660  # EMT's zero-kelvin density, g/cm^3
    squeezed = bulk("Cu", "fcc", a=0.96 * relaxed.cell[0, 0], cubic=True).repeat(2)
    res = MD(temperature_K=100, timestep_fs=4.0, equilibration_steps=50, equilibration_block_steps=25,
             equilibration_tolerance_K=30, nvt_steps=0, nve_steps=0, npt_steps=250, npt_discard_steps=100,
             barostat_tau_fs=200, sample_every=5, progress=False).calc(squeezed, EMT())
    assert res["stable"] and res["density_g_cm3_reason"] is None
    assert res["density_g_cm3"] == pytest.approx(rho0, rel=0.015)  # 100 K expansion of copper is ~0.2 %
    assert 0 < res["density_g_cm3_err"] < 0.05
    assert res["density_g_cm3"] < 0.95 * rho0 / 0.96**3  # not the input box


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

    res = MD(temperature_K=300, timestep_fs=36.0, equilibration_steps=0, nvt_steps=0, nve_steps=400, sample_every=1,
             progress=False).calc(
        bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), EMT()
    )
    assert not res["stable"] and res["failure"].startswith("explosion") and res["verdict"] == "explosion"
    assert res["steps_done"] < 50


def test_free_molecule_breaks_bonds():
    """With (almost) no interactions the atoms of water fly apart: bonds break, the run stops."""
    free = LennardJones(sigma=0.1, epsilon=1e-8, rc=0.3)
    res = MD(temperature_K=1000, equilibration_steps=0, nvt_steps=0, nve_steps=500, progress=False).calc(molecule("H2O"), free)
    assert not res["stable"] and res["verdict"] == "broken_bonds"
    assert res["steps_done"] < 500


def random_walk(D_A2_ps: float, dt_fs: float, frames: int, atoms: int, seed: int = 0) -> np.ndarray:
    steps = np.random.default_rng(seed).normal(scale=np.sqrt(2 * D_A2_ps * 1e-3 * dt_fs), size=(frames, atoms, 3))
    return np.cumsum(steps, axis=0)  # per-dimension variance 2 D dt per step


def test_diffusion_fit_recovers_the_coefficient_of_a_random_walk():
    D, dt = 0.5, 10.0  # Å^2/ps, fs
    times, pos = np.arange(400) * dt, random_walk(D, dt, 400, 200)
    for dims in ((0, 1, 2), (0, 1)):
        fit = diffusion_fit(times, pos, dims, min_lag_fs=250, window_fs=1000)
        assert fit["reason"] is None and fit["msd_exponent"] == pytest.approx(1.0, abs=0.1)
        assert fit["D_A2_per_ps"] == pytest.approx(D, rel=0.1)
        assert abs(fit["D_A2_per_ps"] - D) < 4 * fit["err_A2_per_ps"] and fit["err_A2_per_ps"] < 0.1 * D


def test_diffusion_is_null_with_the_reason_for_a_short_run_or_a_caged_motion():
    dt = 10.0
    short = diffusion_fit(np.arange(61) * dt, random_walk(0.5, dt, 61, 20), min_lag_fs=0, window_fs=1000)
    assert short["D_A2_per_ps"] is None and short["reason"].startswith("run 0.60 ps < 2 x 1.00 ps")
    caged = np.random.default_rng(1).normal(scale=0.1, size=(400, 20, 3))  # vibration about fixed sites
    fit = diffusion_fit(np.arange(400) * dt, caged, min_lag_fs=250, window_fs=1000)
    assert fit["D_A2_per_ps"] is None and fit["reason"].startswith("MSD not diffusive")


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], np.random.default_rng(seed).normal(size=n))


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_block_average_error_matches_the_known_error_of_the_mean(phi):
    """AR(1) with unit noise: var(x) = 1/(1-phi^2), error of the mean sqrt(var/N (1+phi)/(1-phi))."""
    n = 200_000
    x = ar1(phi, n, seed=3)
    exact = np.sqrt(1 / (1 - phi**2) / n * (1 + phi) / (1 - phi))
    mean, err = block_average(x, n_blocks=25)
    assert mean == pytest.approx(x.mean())
    assert err == pytest.approx(exact, rel=0.3)  # 25 blocks: the estimate itself is good to ~15 %
    if phi:
        assert x.std() / np.sqrt(n) < exact / 3  # the naive error would be 4.4x too small
    assert block_average([1.0, 2.0], n_blocks=5) == (1.5, None)


def test_first_peak_is_refined_between_bins():
    r = np.linspace(2.0, 4.0, 41)  # 0.05 Å bins
    pos, height = first_peak(r, 3.0 - (r - 2.83) ** 2)
    assert pos == pytest.approx(2.83, abs=1e-6) and height == pytest.approx(3.0, abs=1e-6)


def test_compare_says_when_a_difference_is_not_resolved():
    r = np.linspace(0.1, 6, 60)
    ref = {"rdf_OO": {"r_A": r, "g": np.exp(-((r - 3) ** 2))}, "density_g_cm3": 1.0, "density_g_cm3_err": 0.01,
           "temperature_mean_K": 300.0, "temperature_mean_K_err": 2.0, "diffusion_A2_per_ps": 0.2, "stable": True}
    mod = {"rdf_OO": {"r_A": r, "g": np.exp(-((r - 3) ** 2)) + 0.1}, "density_g_cm3": 1.1, "density_g_cm3_err": 0.02,
           "temperature_mean_K": 303.0, "temperature_mean_K_err": 2.0, "diffusion_A2_per_ps": 0.3,
           "diffusion_A2_per_ps_err": 0.01, "stable": True}
    cmp = MD.compare(mod, ref)
    assert cmp["rdf_OO_mean_abs_diff"] == pytest.approx(0.1)
    assert cmp["density_g_cm3"]["abs"] == pytest.approx(0.1) and cmp["density_g_cm3"]["resolved"] is True
    assert cmp["temperature_mean_K"]["err"] == pytest.approx(np.hypot(2, 2))
    assert cmp["temperature_mean_K"]["resolved"] is False  # 3 K apart, 2.8 K combined error
    assert cmp["diffusion_A2_per_ps"]["resolved"] is None  # the reference has no error: cannot tell


def test_chgnet_water_short_run_follows_the_same_rules(chgnet):
    """The model side: a run too short for diffusion says so; the O-O peak is intermolecular."""
    from ase.io import read

    from optbench.data import suite_path

    water = read(suite_path("liquid") / "structures" / "water.extxyz")
    res = MD(temperature_K=300, timestep_fs=0.5, equilibration_steps=10, equilibration_block_steps=10,
             nvt_steps=20, nve_steps=0, sample_every=5, n_blocks=2, progress=False).calc(water, chgnet)
    assert res["stable"]
    assert 2.4 < res["rdf_OO_first_peak_A"] < 3.2  # the O-H bond (~1 Å) has no O-O counterpart
    assert res["rdf_OO_first_peak_height"] > 1.5 and res["rdf_OO_first_peak_A_err"] is not None
    assert res["diffusion_A2_per_ps"] is None and res["diffusion_A2_per_ps_reason"].startswith("run 0.01 ps")
    assert res["density_g_cm3"] is None and res["density_g_cm3_reason"].startswith("no NPT run")
    assert res["temperature_ok"] == (abs(res["temperature_mean_K"] - 300) <= 10)
