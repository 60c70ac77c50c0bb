import json

import pytest
from ase.build import bulk
from ase.io import write

from optbench.cli import main
from optbench.errors import InputError
from optbench.io import write_json
from optbench.properties import get_property, run_property


def test_cli_writes_json_and_compares_with_manifest_reference(tmp_path, capsys):
    write(tmp_path / "si.xyz", bulk("Si", "diamond", a=5.43))
    out = tmp_path / "out"
    assert main(["property", "eos", "--model", "chgnet", "--structure", str(tmp_path / "si.xyz"), "--out", str(out)]) == 0
    first = json.loads((out / "eos.json").read_text())
    assert first["error_vs_reference"] is None and first["B0_GPa"] > 0
    # a dataset whose manifest holds that result as reference, with non-default settings
    ds = tmp_path / "ds"
    (ds / "structures").mkdir(parents=True)
    write(ds / "structures" / "Si_diamond.xyz", bulk("Si", "diamond", a=5.43))
    ref = get_property("eos", {"n_points": 7, "volume_range": 0.04}).calc(bulk("Si", "diamond", a=5.43), _chgnet())
    write_json(ds / "manifest.json", {
        "reference": {"method": "GFN2-xTB"},
        "structures": {"si": "structures/Si_diamond.xyz"},
        "reference_properties": {"si": {"eos": ref}},
    })
    # matched by formula (the file name differs), computed with the reference's settings
    res = run_property("eos", model="chgnet", structure=str(tmp_path / "si.xyz"), dataset=str(ds), out=str(out))
    assert res["manifest_entry"] == "si" and res["settings"]["n_points"] == 7
    err = res["error_vs_reference"]
    assert err["B0_GPa"]["abs"] == pytest.approx(0, abs=1e-6)  # same model, same settings: same numbers
    assert json.loads((out / "eos.json").read_text())["error_vs_reference"]["V0_per_atom_A3"]["abs"] < 1e-6
    # a study may override single settings (e.g. a shorter MD run); the rest stay the reference's
    short = run_property("eos", model="chgnet", structure=str(tmp_path / "si.xyz"), dataset=str(ds),
                         out=str(tmp_path / "short"), settings={"n_points": 5})
    assert short["settings"]["n_points"] == 5 and short["settings"]["volume_range"] == 0.04


def _chgnet():
    from optbench.backbones import load_calculator

    return load_calculator("chgnet")


def test_reference_model_needs_dataset(tmp_path, capsys):
    write(tmp_path / "si.xyz", bulk("Si", "diamond", a=5.43))
    rc = main(["property", "elastic", "--model", "reference", "--structure", str(tmp_path / "si.xyz"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "--dataset" in capsys.readouterr().err
    assert not (tmp_path / "o" / "elastic.json").exists()


def test_bad_inputs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        run_property("eos", model="chgnet", structure=str(tmp_path / "missing.xyz"), out=str(tmp_path / "o"))
    (tmp_path / "junk.xyz").write_text("not a structure\n")
    with pytest.raises(InputError, match="junk.xyz"):
        run_property("eos", model="chgnet", structure=str(tmp_path / "junk.xyz"), out=str(tmp_path / "o"))
    write(tmp_path / "si.xyz", bulk("Si", "diamond", a=5.43))
    with pytest.raises(InputError, match="manifest.json"):
        run_property("eos", model="chgnet", structure=str(tmp_path / "si.xyz"), dataset=str(tmp_path), out=str(tmp_path / "o"))
    with pytest.raises(InputError, match="unknown eos setting"):
        get_property("eos", {"n_point": 3})
    assert not (tmp_path / "o" / "eos.json").exists()


def test_bad_reference_settings_name_the_manifest_field(tmp_path):
    write(tmp_path / "si.xyz", bulk("Si", "diamond", a=5.43))
    write_json(tmp_path / "manifest.json", {
        "reference": {"method": "GFN2-xTB"},
        "structures": {"si": "si.xyz"},
        "reference_properties": {"si": {"eos": {"settings": {"n_point": 3}, "B0_GPa": 90.0}}},
    })
    with pytest.raises(InputError, match=r"manifest.json: field 'reference_properties.si.eos.settings'"):
        run_property("eos", model="chgnet", structure=str(tmp_path / "si.xyz"), dataset=str(tmp_path), out=str(tmp_path / "o"))
