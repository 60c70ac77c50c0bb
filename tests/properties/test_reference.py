"""The reference method goes through the same property objects as any model."""

import json

import numpy as np
import pytest
from ase.build import molecule
from ase.io import write
from tblite.ase import TBLite

from optbench.io import write_json
from optbench.properties import Vibrations, run_property


def test_gfn2_water_frequencies_through_the_same_object():
    res = Vibrations().calc(molecule("H2O"), TBLite(method="GFN2-xTB", verbosity=0))
    freqs = np.array(res["frequencies_cm1"])
    assert res["relax"]["converged"] and len(freqs) == 3
    assert 1400 < freqs[0] < 1700 and 3500 < freqs[1] < freqs[2] < 3900  # GFN2-xTB water


def test_reference_model_reproduces_the_manifest_value(tmp_path):
    """`--model reference` builds the manifest's calculator and recomputes the stored reference
    value exactly: one code path for model and reference."""
    reference = pytest.importorskip("optbench.data.reference", reason="optbench.data.reference lands with branch data")
    block = reference.reference_block("GFN2-xTB")
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    stored = Vibrations(fmax=0.005).calc(molecule("H2O"), reference.make_calculator(block))
    write_json(tmp_path / "manifest.json", {
        "reference": block,
        "structures": {"h2o": "h2o.xyz"},
        "reference_properties": {"h2o": {"vibrations": stored}},
    })
    res = run_property("vibrations", model="reference", structure=str(tmp_path / "h2o.xyz"), dataset=str(tmp_path), out=str(tmp_path / "out"))
    assert res["manifest_entry"] == "h2o" and res["settings"]["fmax"] == 0.005
    assert res["error_vs_reference"]["MAE_cm1"] == pytest.approx(0, abs=1e-6)
    assert json.loads((tmp_path / "out" / "vibrations.json").read_text())["error_vs_reference"]["MAE_cm1"] < 1e-6
