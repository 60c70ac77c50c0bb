"""SevenNet specs: pretrained names from the wheel, checkpoint paths, multi-fidelity modals."""

from __future__ import annotations

import pytest
from ase.build import bulk

from optbench.backbones import load_backbone
from optbench.errors import InputError


def test_sevennet_0_alias_and_path_load_the_same_weights(tmp_path):
    from sevenn.util import pretrained_name_to_path

    a = load_backbone("7net-0")
    b = load_backbone(f"sevennet:{pretrained_name_to_path('sevennet-0')}")
    atoms = bulk("Si", "diamond", a=5.43)
    ea = a.calculator().get_potential_energy(atoms)
    assert ea == pytest.approx(b.calculator().get_potential_energy(atoms), abs=0)
    assert a.source == "7net-0" and b.source.startswith("sevennet:")
    assert a.supported_numbers() >= {1, 6, 8, 14, 26}


def test_other_shipped_checkpoint_loads():
    bb = load_backbone("7net-l3i5")
    assert bb.name == "sevennet" and bb.cutoff == pytest.approx(5.0)
    assert -12.0 < bb.calculator().get_potential_energy(bulk("Si", "diamond", a=5.43)) < -9.0


def test_multi_fidelity_model_needs_a_modal():
    with pytest.raises(InputError, match="needs a modal"):
        load_backbone("7net-mf-0")


def test_unknown_names_and_missing_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown SevenNet model"):
        load_backbone("sevennet-99")
    with pytest.raises(InputError, match="not found") as err:
        load_backbone(f"sevennet:{tmp_path / 'none.pth'}")
    assert err.value.file is not None


def test_multi_fidelity_modal_survives_save_and_matches_sevenn(tmp_path):
    from sevenn.calculator import SevenNetCalculator

    bb = load_backbone("7net-mf-0@PBE")
    bb.shift_reference_energies({14: 0.1})
    atoms = bulk("Si", "diamond", a=5.43) * (1, 1, 2)
    atoms.rattle(0.05, seed=0)
    ours = bb.calculator().get_potential_energy(atoms)
    path = bb.save(tmp_path / "m")
    again = load_backbone(tmp_path / "m")
    assert again.modal == "PBE"
    assert again.calculator().get_potential_energy(atoms) == pytest.approx(ours, abs=0)
    theirs = SevenNetCalculator(str(path), device="cpu", modal="PBE").get_potential_energy(atoms)
    assert theirs == pytest.approx(ours, abs=1e-4)
    other = SevenNetCalculator(str(path), device="cpu", modal="R2SCAN").get_potential_energy(atoms)
    assert abs(other - ours) > 0.1  # the modal matters, so keeping it is tested
