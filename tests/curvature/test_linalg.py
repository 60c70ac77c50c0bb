import numpy as np
import torch

from optbench.curvature import hutchinson_trace, lanczos, slq_density


def _matrix(n=200, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.concatenate([[50.0, 30.0, 20.0], rng.normal(0, 1, n - 5), [-8.0, -15.0]])
    a = (q * lam) @ q.T
    return torch.as_tensor(a), np.sort(lam)


def test_lanczos_extremes_match_eigh_with_valid_error_bounds():
    a, lam = _matrix()
    res = lanczos(lambda v: a @ v, a.shape[0], k=3, n_iter=40, seed=1, return_vectors=True)
    top, top_err = res.top(3)
    bottom, bottom_err = res.bottom(2)
    np.testing.assert_allclose(top, lam[::-1][:3], atol=1e-8)
    np.testing.assert_allclose(bottom, lam[:2], atol=1e-8)
    assert np.all(np.abs(top - lam[::-1][:3]) <= top_err + 1e-10)
    u = res.top_vectors(1)[0]
    assert abs(float(u @ (a @ u)) - 50.0) < 1e-8 and abs(float(u.norm()) - 1) < 1e-10


def test_lanczos_stops_on_invariant_subspace():
    a = torch.diag(torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0], dtype=torch.float64))
    res = lanczos(lambda v: a @ v, 5, k=2, n_iter=5, seed=0)
    assert res.n_iter == 3  # three distinct eigenvalues
    np.testing.assert_allclose(res.ritz_values, [1.0, 2.0, 3.0], atol=1e-12)


def test_hutchinson_and_slq_trace_and_density():
    a, lam = _matrix(300, seed=2)
    h = hutchinson_trace(lambda v: a @ v, 300, n_probes=200, seed=3)
    assert abs(h["trace"] - lam.sum()) < 4 * h["stderr"]
    d = slq_density(lambda v: a @ v, 300, n_vectors=6, n_iter=40, seed=4)
    integral = np.trapezoid(d["density"], d["grid"])
    assert abs(integral - 1.0) < 1e-3
    assert abs(d["trace"] - lam.sum()) < 4 * d["trace_stderr"] + 1e-6
    # outlier eigenvalue 50 carries weight ~1/300 in the density
    mass_hi = np.trapezoid(np.where(d["grid"] > 40, d["density"], 0), d["grid"])
    assert 0.2 / 300 < mass_hi < 5 / 300
