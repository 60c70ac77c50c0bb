import numpy as np
import torch

from optbench.curvature import build_hvp_operator, hutchinson_trace, lanczos

from .conftest import dense_hessian, flat_loss


def test_hvp_matches_dense_hessian_and_skips_unused_params(toy):
    bb, fs, w = toy
    op = build_hvp_operator(bb, fs, w)
    assert op.unused == ["unused.weight", "unused.bias"]
    H = dense_hessian(bb, fs, w)
    assert op.dim == H.shape[0]
    E = torch.eye(op.dim, dtype=torch.float64)
    cols = torch.stack([op(E[i]) for i in range(op.dim)], dim=1)
    torch.testing.assert_close(cols, H, rtol=1e-8, atol=1e-8 * float(H.abs().max()))


def test_lanczos_on_hvp_matches_numpy_eigvalsh(toy):
    bb, fs, w = toy
    op = build_hvp_operator(bb, fs, w)
    lam = np.linalg.eigvalsh(dense_hessian(bb, fs, w).numpy())
    k = 5
    res = lanczos(op, op.dim, k=k, n_iter=60, seed=0)
    assert op.dim > 100 and res.n_iter == 60  # a real Krylov subspace, not the full space
    top, _ = res.top(k)
    bottom, _ = res.bottom(k)
    scale = np.abs(lam).max()
    np.testing.assert_allclose(top, lam[::-1][:k], atol=1e-4 * scale, rtol=1e-4)
    np.testing.assert_allclose(bottom[:2], lam[:2], atol=1e-4 * scale, rtol=1e-4)


def test_hutchinson_trace_within_5_percent(toy):
    bb, fs, w = toy
    op = build_hvp_operator(bb, fs, w)
    exact = float(torch.trace(dense_hessian(bb, fs, w)))
    plain = hutchinson_trace(op, op.dim, n_probes=60, seed=1)
    assert abs(plain["trace"] - exact) < 4 * plain["stderr"]  # unbiased, but noisy: H is indefinite
    run = lanczos(op, op.dim, n_iter=40, seed=2, return_vectors=True)
    est = hutchinson_trace(op, op.dim, n_probes=30, seed=1, deflate=run.basis, deflate_trace=run.alphas.sum())
    assert abs(est["trace"] - exact) < 0.05 * abs(exact)
    assert abs(est["trace"] - exact) < 4 * est["stderr"] + 1e-9 * abs(exact)
    assert est["stderr"] < plain["stderr"] / 5


def test_gauss_newton_matches_dense_jacobian_product(toy):
    bb, fs, w = toy
    gn = build_hvp_operator(bb, fs, w, gauss_newton=True)
    # dense J^T H_L J: loss = w_e mean(e_err^2) + w_f mean(df^2) -> H_L diagonal
    f, x0 = flat_loss(bb, fs, w)
    batch = fs.batch(range(len(fs)))
    params = [p for n, p in bb.named_parameters() if not n.startswith("unused")]
    names = [n for n, p in bb.named_parameters() if not n.startswith("unused")]

    def outputs(flat):
        out, start = {}, 0
        for n, p in zip(names, params, strict=True):
            out[n] = flat[start : start + p.numel()].view_as(p)
            start += p.numel()
        bb.params_override = out
        try:
            pred = bb.predict(batch.graphs)
        finally:
            bb.params_override = None
        return torch.cat([pred.energy / batch.n_atoms, pred.forces.reshape(-1)])

    J = torch.autograd.functional.jacobian(outputs, x0)
    n_e, n_f = len(fs), batch.forces.numel()
    hl = torch.cat([torch.full((n_e,), 2 * w.energy / n_e), torch.full((n_f,), 2 * w.forces / n_f)]).double()
    G = J.T @ (hl[:, None] * J)
    E = torch.eye(gn.dim, dtype=torch.float64)
    cols = torch.stack([gn(E[i]) for i in range(0, gn.dim, 7)], dim=1)
    torch.testing.assert_close(cols, G[:, ::7], rtol=1e-7, atol=1e-8 * float(G.abs().max()))
    ev = np.linalg.eigvalsh(G.numpy())
    assert ev.min() > -1e-8 * ev.max()  # PSD, unlike H
    torch.testing.assert_close(gn.gradient, build_hvp_operator(bb, fs, w).gradient)
