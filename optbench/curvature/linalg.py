"""Matrix-free spectral estimators: Lanczos extremes, Hutchinson trace, stochastic Lanczos quadrature.

Every routine takes `matvec(v) -> A v` on 1-D float64 torch tensors of length `dim` (A symmetric)
and returns plain numbers with their error estimates; units are those of A.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from optbench.progress import hidden

MatVec = Callable[[torch.Tensor], torch.Tensor]
_DT = torch.float64


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def rademacher(dim: int, gen: torch.Generator) -> torch.Tensor:
    """Random ±1 vector (float64)."""
    return torch.randint(0, 2, (dim,), generator=gen, dtype=torch.int8).to(_DT).mul_(2).sub_(1)


@dataclass
class LanczosResult:
    """Ritz values (ascending) of an m-step Lanczos run, with residual bounds |λ - θ| <= residual."""

    ritz_values: np.ndarray
    residuals: np.ndarray
    alphas: np.ndarray
    betas: np.ndarray
    first_components: np.ndarray  # (m,) first component of each eigenvector of T (quadrature weights)
    n_iter: int
    n_matvec: int
    ritz_vectors: torch.Tensor | None = None  # (m, dim) rows, same order as ritz_values
    basis: torch.Tensor | None = None  # (m, dim) orthonormal Krylov basis V, V A V^T = T
    meta: dict = field(default_factory=dict)

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Largest k Ritz values (descending) and their residual bounds."""
        k = min(k, self.n_iter)
        return self.ritz_values[::-1][:k].copy(), self.residuals[::-1][:k].copy()

    def bottom(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Smallest k Ritz values (ascending) and their residual bounds."""
        k = min(k, self.n_iter)
        return self.ritz_values[:k].copy(), self.residuals[:k].copy()

    def top_vectors(self, k: int) -> torch.Tensor:
        """Unit Ritz vectors of the k largest Ritz values, as rows (descending order)."""
        if self.ritz_vectors is None:
            raise ValueError("run lanczos(..., return_vectors=True) to get Ritz vectors")
        return self.ritz_vectors.flip(0)[: min(k, self.n_iter)]


def lanczos(
    matvec: MatVec,
    dim: int,
    k: int = 10,
    n_iter: int | None = None,
    *,
    seed: int = 0,
    v0: torch.Tensor | None = None,
    return_vectors: bool = False,
    tol: float = 1e-12,
    progress: bool = False,
    desc: str = "lanczos",
) -> LanczosResult:
    """Lanczos with full reorthogonalisation (two Gram-Schmidt passes) for the extreme eigenvalues.

    `n_iter` defaults to min(dim, max(2k + 10, 30)); a Rademacher start vector is used unless `v0`
    is given, so the same run also serves as one stochastic-Lanczos-quadrature sample.
    """
    if dim < 1:
        raise ValueError("lanczos needs dim >= 1")
    m = min(dim, n_iter if n_iter is not None else max(2 * k + 10, 30))
    v = rademacher(dim, _generator(seed)) if v0 is None else v0.detach().to(_DT).reshape(-1).clone()
    v = v / torch.linalg.vector_norm(v)
    basis = torch.empty(m, dim, dtype=_DT)
    alphas, betas = [], []
    beta = 0.0
    n_mv = 0
    for j in tqdm(range(m), desc=desc, disable=hidden(progress), leave=False):
        basis[j] = v
        w = matvec(v).to(_DT).reshape(-1)
        n_mv += 1
        alpha = float(torch.dot(w, v))
        w = w - alpha * v
        if j > 0:
            w = w - beta * basis[j - 1]
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        alphas.append(alpha)
        beta = float(torch.linalg.vector_norm(w))
        if j == m - 1:
            betas.append(beta)
            break
        scale = max(abs(a) for a in alphas) or 1.0
        if beta <= tol * scale:  # invariant subspace found: Ritz values are exact
            betas.append(0.0)
            break
        betas.append(beta)
        v = w / beta
    n = len(alphas)
    T = np.diag(alphas) + np.diag(betas[: n - 1], 1) + np.diag(betas[: n - 1], -1)
    theta, S = np.linalg.eigh(T)
    residuals = np.abs(betas[n - 1] * S[-1, :])
    vectors = None
    if return_vectors:
        vectors = torch.as_tensor(S.T, dtype=_DT) @ basis[:n]
    return LanczosResult(
        ritz_values=theta, residuals=residuals, alphas=np.array(alphas), betas=np.array(betas),
        first_components=S[0, :].copy(), n_iter=n, n_matvec=n_mv, ritz_vectors=vectors,
        basis=basis[:n] if return_vectors else None,
    )


def hutchinson_trace(
    matvec: MatVec,
    dim: int,
    n_probes: int = 10,
    *,
    seed: int = 0,
    deflate: torch.Tensor | None = None,
    deflate_trace: float | None = None,
    progress: bool = False,
) -> dict:
    """Hutchinson estimate of tr(A) with Rademacher probes: {trace, stderr, n_probes, samples}.

    With `deflate` (rows orthonormal, e.g. a Lanczos basis V) the estimate is
    tr(V A V^T) + Hutchinson on (I - V^T V) A (I - V^T V), as in Hutch++: unbiased, and far less
    variance when a few large eigenvalues dominate. Pass `deflate_trace` = tr(V A V^T) when known
    (for a Lanczos basis it is the sum of the alphas); otherwise it costs one product per row.
    """
    if n_probes < 1:
        raise ValueError("n_probes must be >= 1")
    gen = _generator(seed)
    base = 0.0
    if deflate is not None:
        deflate = deflate.to(_DT)
        if deflate_trace is None:
            deflate_trace = sum(float(torch.dot(q, matvec(q).to(_DT).reshape(-1))) for q in deflate)
        base = float(deflate_trace)
    samples = []
    for _ in tqdm(range(n_probes), desc="hutchinson", disable=hidden(progress), leave=False):
        z = rademacher(dim, gen)
        if deflate is not None:
            z = z - deflate.T @ (deflate @ z)
        samples.append(float(torch.dot(z, matvec(z).to(_DT).reshape(-1))))
    arr = np.array(samples)
    stderr = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {
        "trace": base + float(arr.mean()), "stderr": stderr, "n_probes": n_probes, "samples": arr,
        "deflated_rank": 0 if deflate is None else int(deflate.shape[0]), "deflated_trace": base,
    }


def slq_density(
    matvec: MatVec,
    dim: int,
    n_vectors: int = 3,
    n_iter: int = 30,
    *,
    seed: int = 0,
    grid: np.ndarray | None = None,
    n_grid: int = 400,
    sigma: float | None = None,
    runs: list[LanczosResult] | None = None,
    progress: bool = False,
) -> dict:
    """Stochastic Lanczos quadrature of the spectral density of A.

    Each Rademacher start vector gives an m-node Gauss quadrature (nodes θ, weights τ² summing to 1);
    the density is their average, broadened by Gaussians of width `sigma` (default: 1% of the
    spectral range). `runs` lets an existing Lanczos run (Rademacher start) count as a sample.
    Returns nodes, weights, the density on `grid` (integrates to 1), its stderr across vectors,
    and the trace estimate dim·Σ τ²θ with its stderr.
    """
    runs = list(runs or [])
    for i in tqdm(range(len(runs), n_vectors), desc="slq", disable=hidden(progress), leave=False):
        runs.append(lanczos(matvec, dim, n_iter=n_iter, seed=seed + 1000 + i))
    width = max(r.n_iter for r in runs)
    nodes = np.stack([np.pad(r.ritz_values, (0, width - r.n_iter), constant_values=np.nan) for r in runs])
    weights = np.stack([np.pad(r.first_components**2, (0, width - r.n_iter)) for r in runs])
    finite = np.isfinite(nodes)
    lo, hi = float(np.nanmin(nodes)), float(np.nanmax(nodes))
    span = max(hi - lo, 1e-12 * max(abs(hi), 1.0), 1e-30)
    if sigma is None:
        sigma = 0.01 * span
    if grid is None:
        grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, n_grid)
    per_vec = []
    for nd, wt, ok in zip(nodes, weights, finite, strict=True):
        g = np.exp(-0.5 * ((grid[:, None] - nd[None, ok]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
        per_vec.append(g @ wt[ok])
    per_vec = np.array(per_vec)
    traces = np.array([dim * float(np.sum(w[ok] * n[ok])) for n, w, ok in zip(nodes, weights, finite, strict=True)])
    nv = len(runs)
    return {
        "grid": grid,
        "density": per_vec.mean(axis=0),
        "density_stderr": per_vec.std(axis=0, ddof=1) / np.sqrt(nv) if nv > 1 else np.full_like(grid, np.nan),
        "nodes": nodes,
        "weights": weights,
        "sigma": float(sigma),
        "n_vectors": nv,
        "n_iter": int(n_iter),
        "trace": float(traces.mean()),
        "trace_stderr": float(traces.std(ddof=1) / np.sqrt(nv)) if nv > 1 else float("nan"),
        "runs": runs,
    }
