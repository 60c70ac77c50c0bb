"""Backbones for the strategy tests: the real pretrained CHGNet (one load per session, never trained
in place), a small MACE model, and the toy pair potential of the curvature tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_mace(tmp_path_factory):
    from tests.backbones.conftest import build_small_mace

    return build_small_mace(tmp_path_factory.mktemp("mace") / "small.model")


@pytest.fixture
def toy():
    """A fresh toy backbone (seed 0) behind the real Backbone protocol."""
    from tests.curvature.toy import ToyBackbone

    return ToyBackbone()
