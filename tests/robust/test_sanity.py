"""Structural sanity and label coverage against known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from optbench.data.io import Frame
from optbench.errors import InputError
from optbench.sanity import check_structures, expected_neighbours


def test_neighbour_estimate_matches_the_fcc_shell_count():
    """fcc Cu (a = 3.6 Å) has 12+6+24+12+24 = 78 neighbours within 6 Å; the density estimate is within 5%."""
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    counted = len(neighbor_list("i", atoms, 6.0)) / len(atoms)
    assert counted == 78
    assert expected_neighbours(atoms, 6.0) == pytest.approx(counted, rel=0.05)


def test_memory_budget_is_a_named_input_error(monkeypatch):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    monkeypatch.setenv("OPTBENCH_MEMORY_GB", "0.0001")
    with pytest.raises(InputError) as err:
        check_structures([Frame(atoms)], "big.xyz", cutoff=6.0)
    assert "big.xyz" in str(err.value) and "GB" in str(err.value) and "OPTBENCH_MEMORY_GB" in str(err.value)
    monkeypatch.setenv("OPTBENCH_MEMORY_GB", "4")
    est = check_structures([Frame(atoms)], "big.xyz", cutoff=6.0)
    assert est["max_neighbours_per_atom"] == pytest.approx(78, rel=0.05)


def test_partly_labelled_set_is_masked_and_counted_once(ws, tmp_path, capsys):
    from optbench.cli import main

    frames = ws.frames()
    a = frames[2]
    a.calc = SinglePointCalculator(a, energy=a.calc.results["energy"], stress=a.calc.results["stress"])
    path = ws.write("partial.xyz", frames)
    out = tmp_path / "run"
    assert main(ws.finetune_args(out, train=path)) == 0
    printed = capsys.readouterr()
    notes = [ln for ln in (printed.out + printed.err).splitlines() if "have no 'forces'" in ln]
    assert notes == ["note: 1 of 4 frames of set 'train' have no 'forces' (forces); that term is masked for them"]
    result = json.loads((out / "results.json").read_text())
    assert result["label_coverage"] == {"train": {"forces": {"key": "forces", "missing": 1, "of": 4}}}
    assert np.isfinite(result["metrics"]["final"]["train"]["forces_mae"])


def test_open_structures_all_pairs_and_kd_tree_find_the_same_close_pairs(monkeypatch):
    """Small molecules are checked over every pair, larger ones with a k-d tree: same pairs."""
    from ase import Atoms

    from optbench import sanity

    rng = np.random.default_rng(0)
    atoms = Atoms("C" * 120, positions=rng.uniform(0, 6.0, (120, 3)))  # dense: many pairs below 0.3 Å
    small = {tuple(p) for p in np.stack(sanity._close_pairs(atoms)[:2], 1)}
    monkeypatch.setattr(sanity, "ALL_PAIRS_MAX_ATOMS", 0)
    tree = {tuple(p) for p in np.stack(sanity._close_pairs(atoms)[:2], 1)}
    assert small == tree and len(small) > 0
