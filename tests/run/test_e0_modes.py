"""E0 settings: refit, keep, average, isolated and explicit per-element mappings, on real CHGNet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from optbench.backbones import load_backbone
from optbench.config import FinetuneConfig
from optbench.data import read_frames
from optbench.e0 import apply_e0, parse_e0
from optbench.errors import InputError
from optbench.evaluate import evaluate_model, predict_set
from optbench.loss import FeaturizedSet
from optbench.run import finetune

# PBE/def2-SVP energies of isolated H, C, O atoms (eV), the kind of values MACE users put in E0s.
ISOLATED = {"H": -13.568422383046626, "C": -1025.2770951782686, "O": -2035.5709809589698}
COUNTS = {"H": 6, "C": 2, "O": 1}  # ethanol
# CHGNet keeps its E0s and energies in float32: E0s of ~2000 eV are stored to ~1e-4 eV, totals of
# ~1e5 eV (a molecule on DFT's all-electron scale) to ~1e-2 eV.
E0_TOL, TOTAL_TOL = 3e-4, 3e-2


@pytest.fixture(scope="module")
def chgnet_set(ethanol_small):
    backbone = load_backbone("chgnet")
    return backbone, FeaturizedSet(read_frames(ethanol_small["train"]), backbone)


def _energies(backbone, fset) -> np.ndarray:
    return np.array(predict_set(backbone, fset)["energy"])


def _isolated_frames() -> list[Atoms]:
    frames = []
    for symbol, energy in ISOLATED.items():
        atoms = Atoms(symbol, positions=[[0.0, 0.0, 0.0]])
        atoms.info.update(config_type="IsolatedAtom", energy=energy)
        frames.append(atoms)
    return frames


def test_every_accepted_form_parses_to_one_mapping(tmp_path):
    expected = {"H": -13.6, "O": -2035.6}
    (tmp_path / "e0.json").write_text(json.dumps({"1": -13.6, "8": -2035.6}))
    for form in ("H=-13.6,O=-2035.6", "{1: -13.6, 8: -2035.6}", {8: -2035.6, "H": -13.6}, str(tmp_path / "e0.json")):
        assert parse_e0(form) == expected
    assert list(parse_e0({8: 0.0, 1: 0.0})) == ["H", "O"]  # ordered by atomic number
    assert parse_e0("foundation") == "keep" and parse_e0("estimated") == "refit" and parse_e0("Average") == "average"
    for bad in ("Xx=1", "H=abc", "nonsense", str(tmp_path / "missing.json"), "{}"):
        with pytest.raises(ValueError):
            parse_e0(bad)


def test_bad_e0_names_the_field(ethanol_small):
    with pytest.raises(InputError, match="field 'e0'.*unknown E0s 'bogus'"):
        FinetuneConfig.validated({"train": ethanol_small["train"], "e0": "bogus"})


def test_keep_leaves_the_pretrained_e0s(chgnet_set):
    backbone, fset = chgnet_set
    before = _energies(backbone, fset)
    info = apply_e0("keep", backbone, fset, [], "train.xyz")
    assert info["mode"] == "keep" and set(info["E0_eV"]) == {"H", "C", "O"}
    assert np.array_equal(_energies(backbone, fset), before)


def test_refit_reports_the_e0s_it_set(chgnet_set):
    backbone, fset = chgnet_set
    old = backbone.reference_energies([1, 6, 8])
    info = apply_e0("refit", backbone, fset, [], "train.xyz")
    for z, symbol in ((1, "H"), (6, "C"), (8, "O")):
        assert info["E0_eV"][symbol] == pytest.approx(old[z] + info["shifts_eV"][symbol], abs=E0_TOL)
    ref = np.array([f.energy for f in fset.frames])
    assert np.mean(_energies(backbone, fset) - ref) / 9 == pytest.approx(0.0, abs=2e-4)  # eV/atom


def test_mapping_replaces_the_e0s_and_shifts_every_energy(chgnet_set):
    backbone, fset = chgnet_set
    before = _energies(backbone, fset)
    old = backbone.reference_energies([1, 6, 8])
    info = apply_e0(parse_e0("H=-13.6,C=-1025.3,O=-2035.6"), backbone, fset, [], "train.xyz")
    assert info["mode"] == "mapping" and info["E0_eV"] == pytest.approx({"H": -13.6, "C": -1025.3, "O": -2035.6}, abs=E0_TOL)
    assert info["previous_E0_eV"] == pytest.approx({"H": old[1], "C": old[6], "O": old[8]}, abs=E0_TOL)
    shift = 6 * (-13.6 - old[1]) + 2 * (-1025.3 - old[6]) + (-2035.6 - old[8])  # eV per ethanol
    assert _energies(backbone, fset) - before == pytest.approx(np.full(len(before), shift), abs=TOTAL_TOL)


def test_average_is_the_least_squares_fit_of_total_energies(chgnet_set):
    backbone, fset = chgnet_set
    info = apply_e0("average", backbone, fset, [], "train.xyz")
    assert info["mode"] == "average" and info["rank"] == 1  # one composition
    e0 = info["E0_eV"]
    # one composition: the sum over ethanol reproduces the mean DFT energy, the split is minimum-norm
    per_molecule = sum(COUNTS[s] * e0[s] for s in COUNTS)
    assert per_molecule == pytest.approx(np.mean([f.energy for f in fset.frames]), abs=TOTAL_TOL)
    assert e0["H"] / 6 == pytest.approx(e0["C"] / 2, rel=1e-6)
    assert e0["C"] / 2 == pytest.approx(e0["O"], rel=1e-6)


def test_mapping_missing_an_element_fails_before_writing(ethanol_small, tmp_path):
    cfg = FinetuneConfig(train=ethanol_small["train"], e0={"H": -13.6, "C": -1025.3}, max_steps=1, out=tmp_path / "run")
    with pytest.raises(InputError, match="field 'e0'.*element\\(s\\) O"):
        finetune(cfg)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_isolated_atoms_give_the_e0s_and_are_never_data(ethanol_small, tmp_path):
    train = read(ethanol_small["train"], index=":")
    test = read(ethanol_small["id"], index=":")
    iso = _isolated_frames()
    write(tmp_path / "train.xyz", [iso[0], *train[:12], iso[1], *train[12:], iso[2]], format="extxyz")
    write(tmp_path / "test.xyz", [*test, iso[0]], format="extxyz")
    cfg = FinetuneConfig(train=tmp_path / "train.xyz", tests={"id": tmp_path / "test.xyz"}, e0="isolated",
                         max_steps=1, batch_size=4, eval_every=1, out=tmp_path / "run")
    result = finetune(cfg)
    e0 = result["e0"]
    assert e0["mode"] == "isolated" and e0["isolated_atom_frames_excluded"] == 3
    assert e0["E0_eV"] == pytest.approx(ISOLATED, abs=E0_TOL)
    final = result["metrics"]["final"]
    assert final["train"]["n_structures"] + final["valid"]["n_structures"] == len(train)
    assert final["id"]["n_structures"] == len(test)
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["e0"]["E0_eV"] == pytest.approx(ISOLATED, abs=E0_TOL)
    # `optbench evaluate` leaves them out as well
    block = evaluate_model(str(tmp_path / "run"), {"id": tmp_path / "test.xyz"})
    assert block["id"]["n_structures"] == len(test)


def test_isolated_without_isolated_frames_names_the_file(ethanol_small, tmp_path):
    cfg = FinetuneConfig(train=ethanol_small["train"], e0="isolated", max_steps=1, out=tmp_path / "run")
    with pytest.raises(InputError, match="train.xyz: field 'config_type'.*IsolatedAtom"):
        finetune(cfg)
