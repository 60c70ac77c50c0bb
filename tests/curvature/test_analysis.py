import numpy as np
import pytest
import torch

from optbench.curvature import analyse, build_hvp_operator
from optbench.loss import compute_loss

from .conftest import dense_hessian

FAST = {"k": 4, "n_iter": 40, "n_probes": 4, "n_slq": 2, "progress": False}


def _train(bb, fs, w, opt, steps):
    batch = fs.batch(range(len(fs)))
    for _ in range(steps):
        opt.zero_grad()
        compute_loss(bb, batch, w)[0].backward()
        opt.step()
    return opt.state_dict()


def test_sgd_preconditioned_condition_number_equals_hessians(toy):
    bb, fs, w = toy
    opt = torch.optim.SGD(bb.parameters(), lr=1e-4, momentum=0.9)
    state = _train(bb, fs, w, opt, 2)
    res = analyse(bb, fs, w, "sgd", state, **FAST)
    h, p = res["hessian"], res["preconditioned"]
    gain = 1e-4 / (1 - 0.9)
    assert res["preconditioner"]["effective_lr"] == pytest.approx(gain)
    np.testing.assert_allclose(p["top_eigenvalues"], gain * h["top_eigenvalues"], rtol=1e-6)
    assert p["condition_number_top_k"] == pytest.approx(h["condition_number_top_k"], rel=1e-6)
    assert p["negative_ratio"] == pytest.approx(h["negative_ratio"], rel=1e-6)
    lam = np.linalg.eigvalsh(dense_hessian(bb, fs, w).numpy())
    np.testing.assert_allclose(h["top_eigenvalues"], lam[::-1][:4], rtol=1e-4)
    assert h["lambda_max"] / abs(h["lambda_min"]) == pytest.approx(lam[-1] / abs(lam[0]), rel=1e-4)
    f = res["spectral_filter"]
    np.testing.assert_allclose(f["rayleigh_P"], gain, rtol=1e-10)  # SGD scales every direction alike
    np.testing.assert_allclose(f["relative_gain"], 1.0, rtol=1e-10)


def test_adam_preconditioned_spectrum_matches_dense(toy):
    bb, fs, w = toy
    opt = torch.optim.Adam(bb.parameters(), lr=1e-3)
    state = _train(bb, fs, w, opt, 3)
    res = analyse(bb, fs, w, "adam", state, **FAST)
    H = dense_hessian(bb, fs, w).numpy()
    # dense D from the state by hand: lr / (sqrt(v / (1 - b2^t)) + eps), params in model order
    params = [p for n, p in bb.named_parameters() if not n.startswith("unused")]
    D = np.concatenate([
        (1e-3 / ((opt.state[p]["exp_avg_sq"] / (1 - 0.999**3)).sqrt() + 1e-8)).reshape(-1).numpy() for p in params
    ])
    A = np.sqrt(D)[:, None] * H * np.sqrt(D)[None, :]
    mu = np.linalg.eigvalsh(A)
    pre = res["preconditioned"]
    np.testing.assert_allclose(pre["top_eigenvalues"], mu[::-1][:4], rtol=1e-4)
    assert pre["lambda_min"] == pytest.approx(mu[0], rel=1e-4)
    # spectral filter: u_i^T D u_i for H's top eigenvectors
    lam, U = np.linalg.eigh(H)
    r = np.array([U[:, -1 - i] @ (D * U[:, -1 - i]) for i in range(4)])
    np.testing.assert_allclose(res["spectral_filter"]["rayleigh_P"], r, rtol=1e-3)
    assert res["preconditioner"]["step"] == 3
    assert res["params_without_gradient"] == ["unused.weight", "unused.bias"]
    # Adam reshapes the spectrum: condition number of the top block changes
    assert pre["condition_number_top_k"] != pytest.approx(res["hessian"]["condition_number_top_k"], rel=1e-2)


def test_analyse_is_reproducible_and_reports_errors(toy):
    bb, fs, w = toy
    a = analyse(bb, fs, w, **FAST, seed=3)
    b = analyse(bb, fs, w, **FAST, seed=3)
    np.testing.assert_array_equal(a["hessian"]["density"]["density"], b["hessian"]["density"]["density"])
    assert a["hessian"]["trace_hutchinson"] == b["hessian"]["trace_hutchinson"]
    exact = float(torch.trace(dense_hessian(bb, fs, w)))
    h = a["hessian"]
    assert abs(h["trace_hutchinson"] - exact) < 0.05 * abs(exact)
    assert np.all(h["top_residuals"] >= 0) and h["converged_top"] >= 1
    assert np.trapezoid(h["density"]["density"], h["density"]["grid"]) == pytest.approx(1.0, abs=1e-3)


def test_gauss_newton_option_is_psd(toy):
    bb, fs, w = toy
    res = analyse(bb, fs, w, gauss_newton=True, **FAST)
    assert res["operator"] == "gauss_newton"
    assert res["hessian"]["lambda_min"] > -1e-8 * res["hessian"]["lambda_max"]
    op = build_hvp_operator(bb, fs, w)
    assert res["loss"] == pytest.approx(float(op.loss))


def test_comparison_figures_for_a_study(toy, tmp_path):
    from optbench.curvature import plots

    bb, fs, w = toy
    quick = {"k": 3, "n_iter": 10, "n_probes": 1, "n_slq": 1, "progress": False}
    results = {}
    for name, make in (("sgd", lambda p: torch.optim.SGD(p, lr=1e-4)), ("adam", lambda p: torch.optim.Adam(p, lr=1e-3))):
        state = _train(bb, fs, w, make(bb.parameters()), 2)
        results[name] = analyse(bb, fs, w, name, state, **quick)
    files = plots.plot_comparison(results, tmp_path)
    assert [f.name for f in files] == ["spectral_filter_by_optimizer.png", "preconditioned_density_by_optimizer.png"]
    assert all(f.stat().st_size > 1000 for f in files)
    # SGD does not filter; Adam's gains along H's top directions differ from direction to direction
    assert np.allclose(results["sgd"]["spectral_filter"]["relative_gain"], 1.0)
    assert np.ptp(results["adam"]["spectral_filter"]["relative_gain"]) > 1e-3
