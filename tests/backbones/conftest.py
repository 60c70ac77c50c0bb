"""Shared fixtures: a small MACE model built and saved here (no MACE weights can be fetched offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


def build_small_mace(path: Path, atomic_numbers=(1, 8, 14), seed: int = 0) -> Path:
    """A 2-layer ScaleShiftMACE (float64, r_max 4 Å) with made-up E0s, torch.save'd to `path`."""
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    with torch.random.fork_rng():
        old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            model = modules.ScaleShiftMACE(
                r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=2,
                interaction_cls=block, interaction_cls_first=block, num_interactions=2,
                num_elements=len(atomic_numbers), hidden_irreps=o3.Irreps("8x0e+8x1o"),
                MLP_irreps=o3.Irreps("8x0e"), gate=torch.nn.functional.silu,
                atomic_energies=-np.arange(1.0, len(atomic_numbers) + 1), avg_num_neighbors=8.0,
                atomic_numbers=list(atomic_numbers), correlation=2,
                atomic_inter_scale=20.0, atomic_inter_shift=0.0,
            )
        finally:
            torch.set_default_dtype(old)
    torch.save(model, path)
    return path


@pytest.fixture(scope="session")
def small_mace_file(tmp_path_factory) -> Path:
    return build_small_mace(tmp_path_factory.mktemp("mace") / "small.model")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, extra threads mostly spin-wait (5x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
