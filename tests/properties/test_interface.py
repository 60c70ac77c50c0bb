import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT

from optbench.errors import InputError
from optbench.io import write_artefacts
from optbench.properties import Interface
from optbench.properties.interface import interface_widths


def test_tanh_profile_width_is_exact():
    # rho = rho0/2 (1 - tanh((|z| - z0) / d)): 10-90 width = 2 d artanh(0.8)
    z = np.linspace(-25, 25, 5001)
    d, z0, rho0 = 1.3, 10.0, 1.0
    rho = 0.5 * rho0 * (1 - np.tanh((np.abs(z) - z0) / d))
    w = interface_widths(z, rho)
    assert w["width_A"] == pytest.approx(2 * d * np.arctanh(0.8), rel=0.01)
    assert w["sides"]["lower"]["z50_A"] == pytest.approx(-z0, abs=0.05)
    assert w["sides"]["upper"]["z50_A"] == pytest.approx(z0, abs=0.05)
    assert w["bulk_density"] == pytest.approx(rho0, rel=0.01)


def test_copper_slab_profile_width_and_lateral_diffusion(tmp_path):
    slab = fcc111("Cu", size=(3, 3, 6), vacuum=8.0)
    res = Interface(temperature_K=600, nvt_steps=200, equilibration_steps=200, equilibration_block_steps=50,
                    equilibration_tolerance_K=60, progress=False).calc(slab, EMT())
    assert res["stable"] and res["equilibrated"]
    thickness = np.ptp(slab.positions[:, 2])  # outer layer to outer layer
    lower, upper = res["interfaces_z_A"]["lower"], res["interfaces_z_A"]["upper"]
    # 50 % positions about half a layer spacing outside the outer atomic planes
    assert upper - lower == pytest.approx(thickness + 2.08, abs=1.0)
    assert 0.2 < res["width_A"] < 2.5
    assert res["bulk_density_g_cm3"] == pytest.approx(8.9, rel=0.1)  # copper
    assert res["low_density_g_cm3"] < 0.05
    assert res["layer_atoms"] == 18  # the two outer layers of 9 atoms
    # 0.2 ps of production cannot hold the 0.25-1.25 ps lag window: no coefficient, and why
    assert res["lateral_diffusion_A2_per_ps"] is None
    assert res["lateral_diffusion_A2_per_ps_reason"].startswith("run 0.20 ps < 2 x 1.25 ps")
    assert 0 < res["width_A_err"] < 1.0 and 0 < res["bulk_density_g_cm3_err"] < 0.5
    assert np.all(np.asarray(res["profile"]["density_g_cm3_err"]) >= 0)
    assert res["temperature_mean_K_err"] > 0 and res["temperature_ok"] == (res["temperature_flag"] is None)
    files = Interface().artefacts(res)
    assert list(files) == ["density_profile.png"]
    write_artefacts(tmp_path, files)
    assert (tmp_path / "density_profile.png").stat().st_size > 1000
    same = Interface.compare(res, res)
    assert same["profile_L1"] == 0 and same["width_A"]["abs"] == 0 and same["width_A"]["resolved"] is False


def test_interface_rejects_tilted_cell():
    atoms = bulk("Cu", "fcc", a=3.6)  # primitive fcc: in-plane vectors have z components
    with pytest.raises(InputError, match="axis"):
        Interface().calc(atoms, EMT())


def test_lateral_diffusion_of_a_synthetic_film_is_the_known_one():
    """Atoms of a 10 Å film random-walking in the plane with D = 0.3 Å^2/ps (2.6 ps sampled every 10 fs)."""
    from ase import Atoms

    from optbench.properties.dynamics import Trajectory

    rng = np.random.default_rng(0)
    n, frames, dt, D = 120, 261, 10.0, 0.3
    start = np.column_stack([rng.uniform(0, 12, n), rng.uniform(0, 12, n), rng.uniform(10, 20, n)])
    system = Atoms(f"O{n}", positions=start, cell=[12, 12, 30], pbc=True)
    steps = rng.normal(scale=np.sqrt(2 * D * 1e-3 * dt), size=(frames, n, 3))
    steps[:, :, 2] = 0.0
    steps[0] = 0.0
    pos = start + np.cumsum(steps, axis=0)
    traj = Trajectory(times_fs=list(np.arange(frames) * dt), phases=["nvt"] * frames, positions=list(pos),
                      temperature_K=[300.0] * frames, potential_eV=[0.0] * frames, kinetic_eV=[0.0] * frames)
    res = Interface(equilibration_steps=0, timestep_fs=1.0, sample_every=10).analyse(traj, system)
    assert res["lateral_diffusion_all_A2_per_ps"] == pytest.approx(D, rel=0.1)
    assert res["lateral_diffusion_A2_per_ps"] == pytest.approx(D, rel=0.2) and res["layer_atoms"] > 10
    assert abs(res["lateral_diffusion_all_A2_per_ps"] - D) < 4 * res["lateral_diffusion_all_A2_per_ps_err"]
    assert res["width_A"] is not None and res["bulk_density_g_cm3"] > 0
