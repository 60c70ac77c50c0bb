"""Error metrics against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from optbench.data.io import Frame
from optbench.evaluate import format_table, metrics_from_predictions


class _Set:  # metrics only read .frames
    def __init__(self, frames):
        self.frames = frames


def test_metrics_match_hand_computation():
    a = Frame(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=np.eye(3) * 3, pbc=True), energy=-1.0,
              forces=np.array([[1.0, 0, 0], [0, 1.0, 0]]), stress=np.zeros((3, 3)))
    b = Frame(Atoms("H", positions=[[0, 0, 0]], cell=np.eye(3) * 3, pbc=True), energy=-0.5,
              forces=np.array([[0, 0, 2.0]]), stress=np.eye(3) * 0.01)
    pred = {
        "energy": [-0.9, -0.6],  # errors +0.1 eV / 2 atoms = 50 meV/atom, -0.1 eV / 1 atom = -100 meV/atom
        "forces": [np.array([[1.1, 0, 0], [0, 0, 1.0]]), np.array([[0, 0, 1.0]])],
        "stress": [np.zeros((3, 3)), np.eye(3) * 0.02],
    }
    m = metrics_from_predictions(_Set([a, b]), pred)
    assert m["n_structures"] == 2
    assert m["energy_mae"] == pytest.approx(75.0)
    assert m["energy_rmse"] == pytest.approx(np.sqrt((50**2 + 100**2) / 2))
    # component errors (eV/Å): 0.1, 0, 0 | 0, -1, 1 | 0, 0, -1  -> 9 components
    assert m["forces_mae"] == pytest.approx(1000 * 3.1 / 9)
    assert m["forces_rmse"] == pytest.approx(1000 * np.sqrt((0.01 + 3) / 9))
    assert m["forces_cos"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    # stress: 3 of 18 components off by 0.01 eV/Å^3
    assert m["stress_mae"] == pytest.approx(0.01 * 3 / 18 * 160.21766208)
    assert "75.00" in format_table({"final": {"id": m}})


def test_missing_forces_give_none():
    a = Frame(Atoms("H", positions=[[0, 0, 0]]), energy=-1.0)
    m = metrics_from_predictions(_Set([a]), {"energy": [-1.002], "forces": [np.zeros((1, 3))], "stress": []})
    assert m["energy_mae"] == pytest.approx(2.0)
    assert m["forces_mae"] is None and "stress_mae" not in m
