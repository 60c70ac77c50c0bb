"""condition_number only from converged extreme Ritz values (synthetic spectra, known answers)."""

import numpy as np
import pytest
import torch

from optbench.curvature.analysis import spectrum_summary

COMMON = {"n_probes": 0, "n_slq": 1, "seed": 0, "vectors": False, "progress": False, "label": "synthetic"}


def _diag_matvec(eigs: np.ndarray):
    d = torch.as_tensor(eigs, dtype=torch.float64)
    return lambda v: d * v


def test_unconverged_small_end_gives_null_with_reason():
    """True kappa 1e8 (log-spaced spectrum, dim 400): 12 Lanczos steps find λ_max, not λ_min."""
    eigs = np.logspace(-8, 0, 400)
    out, _ = spectrum_summary(_diag_matvec(eigs), len(eigs), k=3, n_iter=12, **COMMON)
    assert out["condition_number"] is None
    assert "λ_min" in out["condition_number_reason"] and "not converged" in out["condition_number_reason"]
    assert out["lambda_max"] == pytest.approx(1.0, rel=1e-2)  # the top end did converge


def test_well_conditioned_spectrum_gives_true_kappa():
    eigs = np.linspace(1.0, 10.0, 40)
    out, _ = spectrum_summary(_diag_matvec(eigs), len(eigs), k=3, n_iter=40, **COMMON)
    assert out["condition_number_reason"] is None
    assert out["condition_number"] == pytest.approx(10.0, rel=1e-8)
    assert out["condition_number_top_k"] == pytest.approx(10.0 / eigs[-3], rel=1e-8)
