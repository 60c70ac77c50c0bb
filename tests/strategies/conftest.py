"""Backbones for the strategy tests: the real pretrained CHGNet (one load per session, never trained
in place), a small MACE model, and the toy pair potential of the curvature tests."""

from __future__ import annotations

import pytest

from tests.backbones.conftest import one_torch_thread  # noqa: F401  (autouse: one intra-op thread)


@pytest.fixture(scope="session")
def small_mace(tmp_path_factory):
    from tests.backbones.conftest import build_small_mace

    return build_small_mace(tmp_path_factory.mktemp("mace") / "small.model")


@pytest.fixture
def toy():
    """A fresh toy backbone (seed 0) behind the real Backbone protocol."""
    from tests.curvature.toy import ToyBackbone

    return ToyBackbone()
