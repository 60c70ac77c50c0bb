"""Per-element reference energies: rank-aware least squares."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read, write

from optbench.backbones import load_backbone
from optbench.data import read_frames
from optbench.evaluate import predict_set
from optbench.loss import FeaturizedSet
from optbench.train import fit_reference_energies


def test_single_composition_gets_one_offset(ethanol_small):
    backbone = load_backbone("chgnet")
    fset = FeaturizedSet(read_frames(ethanol_small["train"]), backbone)
    info = fit_reference_energies(backbone, fset)
    assert info["rank"] == 1 and info["n_elements"] == 3
    shifts = list(info["shifts_eV"].values())
    assert max(shifts) - min(shifts) == pytest.approx(0.0, abs=1e-9)
    # after the shift the mean energy error is zero
    pred = np.array(predict_set(backbone, fset)["energy"])
    ref = np.array([f.energy for f in fset.frames])
    assert np.mean(pred - ref) / 9 == pytest.approx(0.0, abs=2e-4)
    assert info["rmse_after_meV_per_atom"] < info["rmse_before_meV_per_atom"] / 1000


def test_two_compositions_fit_per_element(ethanol_dir, tmp_path):
    frames = read(ethanol_dir / "train_eth_meth.xyz", index=":")
    eth = [a for a in frames if len(a) == 9][:6]
    meth = [a for a in frames if len(a) == 6][:6]
    write(tmp_path / "mix.xyz", eth + meth, format="extxyz")
    backbone = load_backbone("chgnet")
    fset = FeaturizedSet(read_frames(tmp_path / "mix.xyz"), backbone)
    info = fit_reference_energies(backbone, fset)
    assert info["rank"] == 2
    # residual errors after the fit are small compared with the ~10^5 meV/atom offset
    assert info["rmse_after_meV_per_atom"] < 100
    # each composition is centred on its own (two offsets, one per composition)
    pred = np.array(predict_set(backbone, fset)["energy"])
    ref = np.array([f.energy for f in fset.frames])
    n = np.array([f.n_atoms for f in fset.frames])
    for size in (9, 6):
        sel = n == size
        assert np.mean((pred - ref)[sel]) / size == pytest.approx(0.0, abs=2e-3)
