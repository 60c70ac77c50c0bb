"""Property objects check their settings when built (InputError naming the field), and their
`calc` writes nothing: files are artefacts that the caller writes."""

from __future__ import annotations

import pytest
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from optbench.errors import InputError
from optbench.io import write_artefacts
from optbench.properties import (
    EOS,
    MD,
    PROPERTIES,
    Elastic,
    Interface,
    Phonons,
    Vibrations,
    get_property,
)

BAD = [
    (EOS, {"n_points": 4}, "n_points", "at least 5"),
    (EOS, {"volume_range": 1.5}, "volume_range", "(0, 1)"),
    (EOS, {"relax_steps": "many"}, "relax_steps", "whole number"),
    (EOS, {"relax_cell": 1}, "relax_cell", "true or false"),
    (Elastic, {"normal_strains": (0.01, 0.01)}, "normal_strains", "two distinct"),
    (Elastic, {"shear_strains": 0.01}, "shear_strains", "a list"),
    (Elastic, {"fmax": 0}, "fmax", "> 0"),
    (Phonons, {"supercell": (2, 2)}, "supercell", "3x3"),
    (Phonons, {"supercell": "big"}, "supercell", "3x3"),
    (Phonons, {"displacement": -0.01}, "displacement", "> 0"),
    (Phonons, {"mesh": (4, 4)}, "mesh", "3 whole numbers"),
    (Vibrations, {"nfree": 3}, "nfree", "2 or 4"),
    (Vibrations, {"delta": 0.0}, "delta", "> 0"),
    (MD, {"sample_every": 0}, "sample_every", ">= 1"),
    (MD, {"nvt_steps": -1}, "nvt_steps", ">= 0"),
    (MD, {"timestep_fs": 0.0}, "timestep_fs", "> 0"),
    (MD, {"repeat": (2, 2)}, "repeat", "3 whole numbers"),
    (MD, {"diffusion_species": 8}, "diffusion_species", "a string"),
    (Interface, {"axis": 3}, "axis", "0, 1 or 2"),
    (Interface, {"bin_width": 0.0}, "bin_width", "> 0"),
    (Interface, {"n_blocks": 0}, "n_blocks", ">= 1"),
]


@pytest.mark.parametrize(("cls", "settings", "field", "needle"), BAD,
                         ids=[f"{c.name}-{f}-{i}" for i, (c, _, f, _) in enumerate(BAD)])
def test_a_bad_setting_is_refused_when_the_object_is_built(cls, settings, field, needle):
    with pytest.raises(InputError) as err:
        cls(**settings)
    assert err.value.field == field and needle in str(err.value)
    with pytest.raises(InputError):  # the same through the settings dict a manifest or a study holds
        get_property(cls.name, settings)


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_defaults_and_their_json_round_trip_build(name):
    prop = get_property(name, None)
    assert type(prop).from_settings(prop.settings()) == prop  # lists from JSON stand for tuples
    assert prop.settings() == get_property(name, prop.settings()).settings()


def test_optional_settings_take_none_and_ints_stand_for_floats():
    assert MD(diffusion_species=None, max_broken_fraction=None, temperature_K=300).temperature_K == 300
    assert Phonons(supercell=None).supercell is None
    with pytest.raises(InputError, match="field 'temperature_K'"):
        MD(temperature_K=None)


def test_calc_writes_nothing_and_artefacts_are_written_by_the_caller(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    md = MD(temperature_K=100, equilibration_steps=0, nvt_steps=20, nve_steps=10, sample_every=5, n_blocks=2,
            progress=False)
    res, files = md.calc_with_artefacts(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())
    assert not list(tmp_path.iterdir())
    assert set(files) == {"rdf.png", "msd.png"} and "rdf.png" not in res
    assert [p.name for p in write_artefacts(tmp_path / "out", files)] == ["rdf.png", "msd.png"]
    assert (tmp_path / "out" / "rdf.png").read_bytes()[:4] == b"\x89PNG"
    assert Vibrations(relax_steps=0).calc_with_artefacts(molecule("N2"), EMT())[1] == {}


def test_write_artefacts_refuses_what_it_cannot_write(tmp_path):
    write_artefacts(tmp_path, {"a.txt": "text", "b.bin": b"\x00\x01"})
    assert (tmp_path / "a.txt").read_text() == "text" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(TypeError, match="c.json"):
        write_artefacts(tmp_path, {"c.json": {"x": 1}})


def test_run_property_refuses_bad_settings_before_loading_any_model(tmp_path):
    from ase.io import write

    from optbench.properties import run_property

    write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.6))
    with pytest.raises(InputError, match="n_points") as err:  # not "unknown model": the settings fail first
        run_property("eos", model="no-such-model", structure=str(tmp_path / "cu.xyz"), out=str(tmp_path / "o"),
                     settings={"n_points": 3})
    assert err.value.field == "settings" and not (tmp_path / "o" / "eos.json").exists()
