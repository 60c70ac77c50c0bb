"""Adding a property is one file (tests/properties/toy.py) plus one registry line: the CLI,
`run_property` and the comparison with a dataset's reference value then know it."""

from __future__ import annotations

import json

import pytest

from optbench.cli import main
from optbench.errors import InputError
from optbench.io import write_json
from optbench.properties import get_property, register_property, run_property, unregister_property
from optbench.regimes import get_regime

from .toy import MaxForce

SI = get_regime("crystal").path() / "structures" / "Si.extxyz"  # the shipped relaxed Si primitive cell


@pytest.fixture
def toy_property():
    register_property(MaxForce)  # the one registry line
    yield MaxForce.name
    unregister_property(MaxForce.name)


def test_a_registered_property_runs_from_the_cli_on_chgnet(toy_property, tmp_path):
    out = tmp_path / "out"
    assert main(["property", toy_property, "--model", "chgnet", "--structure", str(SI), "--out", str(out)]) == 0
    result = json.loads((out / "max_force.json").read_text())
    assert result["property"] == "max_force" and result["model"] == "chgnet" and result["error_vs_reference"] is None
    assert result["settings"] == {"rattle_A": 0.05, "seed": 0}
    assert 0.01 < result["max_force_eV_A"] < 10  # a 0.05 Å rattle of Si: a real, finite force


def test_a_registered_property_is_compared_with_the_datasets_reference(toy_property, tmp_path, chgnet):
    from ase.io import read

    ref = get_property(toy_property, {"rattle_A": 0.1}).calc(read(SI), chgnet)
    ds = tmp_path / "ds"
    ds.mkdir()
    write_json(ds / "manifest.json", {"reference": {"method": "GFN2-xTB"}, "structures": {"Si": str(SI)},
                                      "reference_properties": {"Si": {toy_property: ref}}})
    res = run_property(toy_property, model="chgnet", structure=str(SI), dataset=str(ds), out=str(tmp_path / "o"))
    assert res["manifest_entry"] == "Si" and res["settings"]["rattle_A"] == 0.1  # the reference's settings
    assert res["error_vs_reference"]["max_force_eV_A"]["abs"] == pytest.approx(0, abs=1e-5)  # same model, same numbers


def test_settings_are_checked_and_unregistered_names_are_unknown(toy_property):
    with pytest.raises(InputError, match="rattle_A"):
        get_property(toy_property, {"rattle_A": -1})
    unregister_property(toy_property)
    with pytest.raises(InputError, match="unknown property 'max_force'"):
        get_property(toy_property)
    with pytest.raises(SystemExit) as exit_:
        main(["property", toy_property, "--model", "chgnet", "--structure", str(SI), "--out", "o"])
    assert exit_.value.code == 2
