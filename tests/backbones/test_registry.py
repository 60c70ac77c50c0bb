"""Adding a backbone is an adapter module (here tests/curvature/toy.py) plus one registry line: model
specs, aliases, provenance and the ASE calculator then know it."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from optbench import provenance as prov
from optbench.backbones import (
    backbone_package,
    load_backbone,
    load_calculator,
    register_backbone,
    unregister_backbone,
)
from optbench.errors import InputError
from optbench.provenance import backbone_of, provenance
from tests.curvature import toy


@pytest.fixture
def toy_backbone():
    register_backbone("toyb", f"{toy.__name__}:load", package="toyb-dist", aliases=("toyb-",))  # the one line
    yield "toyb"
    unregister_backbone("toyb")


def test_a_registered_backbone_loads_and_computes(toy_backbone):
    assert isinstance(load_backbone(toy_backbone), toy.ToyBackbone)
    atoms = molecule("H2O")
    atoms.calc = load_calculator(toy_backbone)
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_forces().shape == (3, 3)


def test_the_entry_carries_its_aliases_and_package(toy_backbone):
    assert backbone_of("toyb-small") == backbone_of("toyb:weights.pt") == "toyb"
    assert backbone_package(toy_backbone) == "toyb-dist" and prov.BACKBONE_PACKAGES["toyb"] == "toyb-dist"
    assert "toyb-dist" in provenance(backbones=[toy_backbone])["versions"]
    unregister_backbone(toy_backbone)
    with pytest.raises(InputError, match="unknown model 'toyb'"):
        load_backbone(toy_backbone)


def test_the_builtin_entries():
    assert [backbone_of(s) for s in ("chgnet", "chgnet:0.3.0", "sevennet-0", "7net-0", "sevennet:x.pth",
                                     "mace-mp-small", "mace:m.model")] == \
        ["chgnet", "chgnet", "sevennet", "sevennet", "sevennet", "mace", "mace"]
    assert [backbone_package(n) for n in ("chgnet", "sevennet", "mace")] == ["chgnet", "sevenn", "mace-torch"]
