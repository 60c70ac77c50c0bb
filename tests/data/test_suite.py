"""The shipped small suite: complete manifests, honest labels, small files, valid fine-tuning input."""

from __future__ import annotations

import numpy as np
import pytest

from optbench.data import dataset_files, finetune_inputs, load_manifest, read_frames, suite_path
from optbench.data.reference import make_calculator

REGIMES = ("molecular", "crystal", "liquid", "interface")
FIELDS = ("name", "regime", "seed", "size", "reference", "keys", "splits", "structures", "reference_properties")
EXPECTED_PROPERTIES = {
    "molecular": {"ethanol": {"vibrations"}, "malonaldehyde": {"vibrations"}, "butane": {"vibrations"}},
    # Al elastic withheld: its stress labels miss the convergence record's tolerance (manifest "withheld")
    "crystal": {"Si": {"elastic", "eos", "phonons"}, "NaCl": {"elastic", "eos", "phonons"}, "Al": {"eos", "phonons"}},
    "liquid": {"water": {"md"}},
    "interface": {"water_film": {"interface"}},
}


@pytest.mark.parametrize("regime", REGIMES)
def test_manifest_is_complete_and_files_match(regime):
    folder = suite_path(regime)
    man = load_manifest(folder, verify=True)  # sha256 of every split
    assert all(k in man for k in FIELDS)
    assert man["regime"] == regime and man["size"] == "small" and man["seed"] == 0
    tags = [s["tag"] for s in man["splits"].values()]
    assert tags.count("train") == 1 and "ID" in tags and "OOD" in tags
    for name, split in man["splits"].items():
        assert split["count"] == len(read_frames(folder / split["file"])) >= 5, name
    for name, rel in man["structures"].items():
        assert (folder / rel).is_file(), name
    for struct, props in EXPECTED_PROPERTIES[regime].items():
        got = man["reference_properties"][struct]
        assert props <= set(got), (struct, set(got))
        assert all("settings" in got[p] for p in props)


def test_suite_is_small():
    total = sum(p.stat().st_size for r in REGIMES for p in suite_path(r).rglob("*") if p.is_file())
    assert total < 8e6, f"shipped suite is {total / 1e6:.1f} MB"


@pytest.mark.parametrize("regime", REGIMES)
def test_labels_recompute_from_the_manifest(regime):
    """Random frames recomputed with the manifest's reference: 1e-6 eV, eV/Å, eV/Å^3. Two of every split
    for xTB; for plane-wave DFT (tens of seconds a frame) the smallest frame of two random splits."""
    folder = suite_path(regime)
    man = load_manifest(folder)
    rng = np.random.default_rng(abs(hash(regime)) % 2**32)
    dft = man["reference"].get("code") == "gpaw"
    names = list(man["splits"])
    for name in (rng.choice(names, size=2, replace=False) if dft else names):
        split = man["splits"][name]
        frames = read_frames(folder / split["file"])
        smallest = [int(np.argmin([len(f.atoms) for f in frames]))]
        for i in smallest if dft else rng.choice(len(frames), size=min(2, len(frames)), replace=False):
            f = frames[i]
            atoms = f.atoms.copy()
            atoms.calc = make_calculator(man["reference"])
            assert atoms.get_potential_energy() == pytest.approx(f.energy, abs=1e-6), (name, i)
            assert np.abs(atoms.get_forces() - f.forces).max() < 1e-6, (name, i)
            if f.stress is not None:
                assert np.abs(atoms.get_stress(voigt=False) - f.stress).max() < 1e-6, (name, i)


def test_physics_of_the_references():
    """Reference values against known answers for these methods' class of accuracy."""
    crystal = load_manifest(suite_path("crystal"))["reference_properties"]
    for name, bulk_exp in (("Si", 98.0), ("NaCl", 25.0)):  # experimental bulk moduli, GPa
        b = crystal[name]["eos"]["B0_GPa"]
        assert 0.4 * bulk_exp < b < 2.0 * bulk_exp, (name, b)
    # highest phonon frequency (THz; no LO-TO splitting applied): Si's is its optical mode at Gamma
    # (15.5 experiment); NaCl's lies between its TO (4.9) and LO (7.9) frequencies at Gamma (experiment)
    for name, low, high in (("Si", 0.9 * 15.5, 1.1 * 15.5), ("NaCl", 4.9, 7.9), ("Al", 0.9 * 9.7, 1.1 * 9.7)):
        ph = crystal[name]["phonons"]
        assert not ph["has_imaginary"] and low < ph["max_frequency_THz"] < high, (name, ph["max_frequency_THz"])
    nacl = crystal["NaCl"]["elastic"]  # experiment: C11 49, C12 13, C44 13 GPa
    assert nacl["positive_definite"]
    assert nacl["C11"] == pytest.approx(49.0, rel=0.35) and nacl["C44"] == pytest.approx(12.8, rel=0.35)
    mol = load_manifest(suite_path("molecular"))["reference_properties"]
    assert all(p["vibrations"]["n_imaginary"] == 0 for p in mol.values())
    freqs = np.array(mol["ethanol"]["vibrations"]["frequencies_cm1"])
    assert freqs.max() == pytest.approx(3650, abs=250)  # O-H stretch
    assert max(mol["butane"]["vibrations"]["frequencies_cm1"]) == pytest.approx(3000, abs=150)  # C-H stretch


@pytest.mark.parametrize("regime", REGIMES)
def test_dataset_gives_finetune_everything(regime):
    files = dataset_files(suite_path(regime))
    inputs = finetune_inputs(suite_path(regime))
    assert inputs["train"] == files.train and files.valid is not None
    assert any(n.startswith("ood") for n in inputs["tests"]) and any(not n.startswith("ood") for n in inputs["tests"])
    from optbench.config import FinetuneConfig

    FinetuneConfig(**inputs)  # validates


def test_finetune_runs_on_a_shipped_dataset(tmp_path):
    from optbench.config import FinetuneConfig
    from optbench.train import finetune

    inputs = finetune_inputs(suite_path("molecular"))
    cfg = FinetuneConfig(**inputs, model="chgnet", max_steps=2, batch_size=4, eval_every=2, out=tmp_path / "run")
    result = finetune(cfg)
    assert result["status"] == "completed" and result["steps"] == 2
    final = result["metrics"]["final"]
    assert {"test_id", "ood_600K", "ood_scan"} <= set(final)
    assert np.isfinite(final["ood_scan"]["forces_mae"])


def _md_rules(res: dict, diffusion_key: str) -> None:
    """What every shipped MD reference must satisfy: equilibrated temperature within 10 K of the
    target or flagged, block errors, diffusion only from >= 1 ps of diffusive lags in a run twice
    as long (else null with the reason)."""
    assert res["stable"] and res["equilibration"]["criterion"]
    assert 0 < res["temperature_mean_K_err"] < 10
    assert res["temperature_ok"] == (abs(res["temperature_mean_K"] - res["temperature_target_K"]) <= 10)
    assert res["temperature_ok"] or res["temperature_flag"].startswith("mean ")
    d = res[diffusion_key]
    fit = res[diffusion_key.replace("_A2_per_ps", "_fit")]
    if d is None:
        assert "ps" in res[f"{diffusion_key}_reason"]
    else:
        a, b = fit["lag_fs"]
        assert b - a >= 1000 and res["production_fs"] >= 2 * b and 0.7 <= fit["msd_exponent"] <= 1.3
        assert 0 < res[f"{diffusion_key}_err"] < d


def test_water_references_report_what_they_measure():
    liquid = load_manifest(suite_path("liquid"))["reference_properties"]["water"]["md"]
    _md_rules(liquid, "diffusion_A2_per_ps")
    # the intermolecular O-O peak (water: 2.7-2.9 Å), not the O-H bond at ~1 Å
    assert 2.5 < liquid["rdf_OO_first_peak_A"] < 3.1 and 0 < liquid["rdf_OO_first_peak_A_err"] < 0.1
    assert liquid["rdf_OO_first_peak_height"] > 1.5 and 0 < liquid["rdf_OO_first_peak_height_err"] < 0.5
    if liquid["settings"]["npt_steps"] == 0:  # an NVT box's density is its input
        assert liquid["density_g_cm3"] is None and "no NPT run" in liquid["density_g_cm3_reason"]
    else:
        assert 0.8 < liquid["density_g_cm3"] < 1.3 and liquid["density_g_cm3_err"] > 0
    film = load_manifest(suite_path("interface"))["reference_properties"]["water_film"]["interface"]
    _md_rules(film, "lateral_diffusion_A2_per_ps")
    assert 0.6 < film["bulk_density_g_cm3"] < 1.4 and film["low_density_g_cm3"] < 0.1
    assert 0.3 < film["width_A"] < 8.0 and 0 < film["width_A_err"] < film["width_A"]


def test_redo_recomputes_only_the_named_reference_property(tmp_path):
    """GFN1-xTB MD of the shipped 16-water box, 20 steps: new settings, new values, frames untouched."""
    import shutil

    from optbench.data.refprops import redo_reference_properties

    folder = tmp_path / "liquid"
    shutil.copytree(suite_path("liquid"), folder)
    before = load_manifest(folder)
    tiny = {"temperature_K": 300.0, "timestep_fs": 0.5, "equilibration_steps": 0, "nvt_steps": 20, "nve_steps": 0,
            "sample_every": 5, "n_blocks": 2, "progress": False}
    redo_reference_properties(folder, ["md"], {"md": tiny})
    after = load_manifest(folder)
    md = after["reference_properties"]["water"]["md"]
    assert after["property_settings"]["water"]["md"] == tiny and md["settings"]["nvt_steps"] == 20
    assert md["stable"] and md["steps_done"] == 20 and md["diffusion_A2_per_ps"] is None
    assert after["splits"] == before["splits"] and after["structures"] == before["structures"]
