"""One loss definition: the validation loss is the training loss over the whole validation set."""

from __future__ import annotations

import pytest
import torch

from optbench.backbones import load_backbone
from optbench.data.io import read_frames
from optbench.evaluate import evaluate_sets, inference
from optbench.loss import FeaturizedSet, LossWeights, compute_loss, loss_from_metrics

from .data import strained_copper


def test_validation_loss_equals_training_loss_on_a_set_with_stress(tmp_path):
    frames = read_frames(strained_copper(tmp_path / "cu.xyz", 5))
    bb = load_backbone("chgnet")
    fset = FeaturizedSet(frames, bb, "valid")
    weights = LossWeights(energy=1.0, forces=10.0, stress=0.1)
    with inference(bb):
        train_def, parts = compute_loss(bb, fset.batch(range(len(fset))), weights)
    assert float(parts["stress"]) > 0  # the stress term is present and carries weight
    block = evaluate_sets(bb, {"valid": fset})["valid"]
    assert loss_from_metrics(block, weights) == pytest.approx(float(train_def), rel=1e-5)
    assert block["stress_rmse"] ** 2 == pytest.approx(float(parts["stress"]), rel=1e-5)
    assert torch.isfinite(train_def)
