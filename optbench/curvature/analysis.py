"""Curvature of the fine-tuning loss as an optimizer sees it: spectra of H and of P^1/2 H P^1/2,
trace, spectral density, and the spectral filter u_i^T P u_i along H's top eigenvectors."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from optbench.curvature.hvp import HessianOperator, build_hvp_operator
from optbench.curvature.linalg import LanczosResult, hutchinson_trace, lanczos, slq_density
from optbench.curvature.precond import Preconditioner, preconditioner_from_state
from optbench.errors import InputError
from optbench.loss import LossWeights
from optbench.optim.spec import preconditioner_spec
from optbench.provenance import log
from optbench.threads import Beside, available_bytes, resident_bytes


class SubspaceOperator:
    """A symmetric operator restricted to some coordinates of its space (embed, apply, extract)."""

    def __init__(self, matvec: Callable, full_dim: int, coords: torch.Tensor):
        self.matvec, self.full_dim, self.coords = matvec, full_dim, coords
        self.dim = int(coords.numel())

    def __call__(self, v):
        full = torch.zeros(self.full_dim, dtype=torch.float64)
        full[self.coords] = v
        return self.matvec(full)[self.coords]


def preconditioned(matvec: Callable, P: Preconditioner) -> Callable:
    """x -> sign · S^1/2 H S^1/2 x for P = sign · S (symmetric; same eigenvalues as P H)."""
    if P.sign < 0:
        return lambda x: -P.apply_sqrt(matvec(P.apply_sqrt(x)))
    return lambda x: P.apply_sqrt(matvec(P.apply_sqrt(x)))


RITZ_RTOL = 1e-2  # a Ritz value counts as converged when its residual bound is below 1% of |θ|


def _converged(theta: float, residual: float, rtol: float) -> bool:
    """|λ - θ| <= residual (Lanczos bound): converged when residual <= rtol·|θ|."""
    return bool(np.isfinite(residual) and residual <= rtol * abs(theta))


def condition_numbers(top: np.ndarray, bottom: np.ndarray, top_err: np.ndarray | None = None,
                      bottom_err: np.ndarray | None = None, rtol: float = RITZ_RTOL) -> dict:
    """λ_max/λ_min, λ_1/λ_k over the top k, and |λ_min|/λ_max (how negative the landscape is).

    A ratio is given only when the Ritz values it divides have converged (residual bound below
    `rtol` times the value; bounds default to 0 = exact), else it is None and `*_reason` says why.
    """
    top_err = np.zeros_like(top) if top_err is None else top_err
    bottom_err = np.zeros_like(bottom) if bottom_err is None else bottom_err
    lmax, lmin = float(top[0]), float(bottom[0])
    ok_max, ok_min = _converged(lmax, top_err[0], rtol), _converged(lmin, bottom_err[0], rtol)
    ok_k = _converged(float(top[-1]), top_err[-1], rtol)

    def why(*checks: tuple[str, bool, float, float]) -> str | None:
        bad = [f"{name} = {th:.3g} has residual bound {r:.3g} > {rtol:g}·|{name}|" for name, ok, th, r in checks if not ok]
        return ("not converged: " + "; ".join(bad)) if bad else None

    kappa_reason = why(("λ_max", ok_max, lmax, float(top_err[0])), ("λ_min", ok_min, lmin, float(bottom_err[0])))
    if kappa_reason is None and lmin <= 0:
        kappa_reason = f"λ_min = {lmin:.3g} <= 0: the spectrum found is not positive definite"
    topk_reason = why(("λ_max", ok_max, lmax, float(top_err[0])), ("λ_k", ok_k, float(top[-1]), float(top_err[-1])))
    if topk_reason is None and top[-1] <= 0:
        topk_reason = f"λ_k = {float(top[-1]):.3g} <= 0"
    return {
        "lambda_max": lmax,
        "lambda_min": lmin,
        "condition_number": lmax / lmin if kappa_reason is None else None,
        "condition_number_reason": kappa_reason,
        "condition_number_top_k": lmax / float(top[-1]) if topk_reason is None else None,
        "condition_number_top_k_reason": topk_reason,
        "negative_ratio": abs(min(lmin, 0.0)) / lmax if lmax > 0 and ok_max and ok_min else None,
    }


def spectrum_summary(matvec: Callable, dim: int, *, k: int, n_iter: int | None, n_probes: int,
                     n_slq: int, seed: int, vectors: bool, progress: bool, label: str) -> tuple[dict, LanczosResult]:
    """Lanczos extremes (with residual bounds), Hutchinson trace and SLQ density of one operator."""
    t0 = time.perf_counter()
    run = lanczos(matvec, dim, k, n_iter, seed=seed, return_vectors=True, progress=progress, desc=f"lanczos {label}")
    top, top_err = run.top(k)
    bottom, bottom_err = run.bottom(k)
    slq = slq_density(matvec, dim, n_vectors=n_slq, n_iter=run.n_iter, seed=seed, runs=[run], progress=progress)
    # Hutch++-style: exact trace on the Krylov basis (sum of alphas), Hutchinson on its complement
    hutch = hutchinson_trace(
        matvec, dim, n_probes, seed=seed + 7, deflate=run.basis, deflate_trace=float(run.alphas.sum()), progress=progress
    ) if n_probes > 0 and run.n_iter < dim else None
    if hutch is None and run.n_iter == dim:  # the Krylov space is the whole space: the trace is exact
        hutch = {"trace": float(run.alphas.sum()), "stderr": 0.0}
    scale = max(abs(top[0]), abs(bottom[0]), 1e-300)
    out = {
        "dim": dim,
        "lanczos_iterations": run.n_iter,
        "top_eigenvalues": top,
        "top_residuals": top_err,
        "bottom_eigenvalues": bottom,
        "bottom_residuals": bottom_err,
        "converged_top": int(np.sum(top_err <= 1e-3 * scale)),
        "converged_bottom": int(np.sum(bottom_err <= 1e-3 * scale)),
        **condition_numbers(top, bottom, top_err, bottom_err),
        "trace_hutchinson": None if hutch is None else hutch["trace"],
        "trace_hutchinson_stderr": None if hutch is None else hutch["stderr"],
        "hutchinson_probes": n_probes,
        "trace_slq": slq["trace"],
        "trace_slq_stderr": slq["trace_stderr"],
        "density": {k2: slq[k2] for k2 in ("grid", "density", "density_stderr", "sigma", "n_vectors", "n_iter")},
        "slq_nodes": slq["nodes"],
        "slq_weights": slq["weights"],
        "wall_time_s": time.perf_counter() - t0,
    }
    if not vectors:
        run.ritz_vectors = run.basis = None
    return out, run


def analyse(
    backbone,
    featurized_set,
    weights: LossWeights,
    optimizer_name: str | None = None,
    optimizer_state: dict | None = None,
    *,
    indices: Sequence[int] | None = None,
    k: int = 10,
    n_iter: int | None = None,
    n_probes: int = 10,
    n_slq: int = 3,
    gauss_newton: bool = False,
    hparams: dict | None = None,
    seed: int = 0,
    progress: bool = True,
    operator: HessianOperator | None = None,
    named_params: Sequence[tuple[str, torch.Tensor]] | None = None,
    beside: bool = False,
) -> dict:
    """Hessian spectrum of the loss at the backbone's weights and, with an optimizer state, the
    spectrum of P^1/2 H P^1/2 and the spectral filter of P along H's top eigenvectors.

    Returns plain numbers/arrays (eigenvalues in loss units per parameter unit^2 for H,
    dimensionless for the preconditioned operator since P carries the learning rate). `named_params`: the
    trainable parameters in the optimizer's order (state index i), when the optimizer had several groups;
    default the backbone's trainable parameters (frozen ones are out of the operator either way).
    `beside`: P^1/2 H P^1/2's spectrum in a thread beside H's, on a copy of the model (same numbers, twice the memory).
    """
    torch.manual_seed(seed)
    named = list(named_params) if named_params is not None else backbone.named_parameters()
    with_state = optimizer_name is not None and optimizer_state is not None
    if with_state and named_params is None:
        _check_one_group(optimizer_state)
    before = resident_bytes()
    make_op = functools.partial(_operator, featurized_set=featurized_set, weights=weights, indices=indices,
                                gauss_newton=gauss_newton)
    op = operator or make_op(backbone, named)
    all_params = [p for _, p in named]
    result: dict = {
        "loss": float(op.loss.detach()),
        "loss_parts": {key: float(v) for key, v in op.parts.items()},
        "gradient_norm": float(torch.linalg.vector_norm(op.gradient)),
        "operator": "gauss_newton" if gauss_newton else "hessian",
        "n_params": sum(p.numel() for p in all_params),
        "n_params_analysed": op.dim,
        "params_without_gradient": op.unused,
    }
    common = {"k": k, "n_iter": n_iter, "n_probes": n_probes, "n_slq": n_slq, "seed": seed, "progress": progress}
    pre = _Preconditioned(op, optimizer_name, optimizer_state, all_params, hparams) if with_state else None
    job = pre.beside(common, before, make_op, backbone, named) if pre is not None and beside and operator is None \
        else None
    n0, t0 = op.n_matvec, time.perf_counter()
    hess, hrun = spectrum_summary(op, op.dim, vectors=True, label="H", **common)
    result["hessian"] = hess
    result["seconds_per_hvp"] = (time.perf_counter() - t0) / max(op.n_matvec - n0, 1)
    if pre is None:
        return result
    result.update(pre.record(job.result() if job is not None else pre.spectrum(common), hrun, k, job is not None))
    return result


def _check_one_group(optimizer_state: dict) -> None:
    """InputError when the state has several parameter groups: their order is not the model's."""
    if len(optimizer_state.get("param_groups", [])) > 1:
        raise InputError("the optimizer state has several parameter groups: pass named_params in the optimizer's "
                         "order (optbench.strategies.named_groups)", field="named_params")


def _operator(backbone, named, *, featurized_set, weights, indices, gauss_newton) -> HessianOperator:
    return build_hvp_operator(backbone, featurized_set, weights, indices, gauss_newton=gauss_newton, names_params=named)


def _room_for(op, before: int | None) -> bool:
    """Whether the machine's available memory holds 1.5 times what building `op` took (yes where unknown)."""
    after, free = resident_bytes(), available_bytes()
    if before is None or after is None or free is None:
        return True
    need = max(after - before, 0)
    if free > 1.5 * need:
        return True
    log.info(f"P^1/2 H P^1/2 after H, not beside it: a second operator needs about {need / 1e9:.1f} GB, "
             f"{free / 1e9:.1f} GB are available")
    return False


class _Preconditioned:
    """P read from the optimizer's state, over the coordinates of `op` that have state; the spectrum of
    P^1/2 H P^1/2 there (on `op`, or on an operator of a copy of the model) and P's spectral filter."""

    def __init__(self, op, optimizer_name: str, optimizer_state: dict, all_params, hparams):
        space = op.space
        # parameters the optimizer never stepped have no state: leave them out of the preconditioned space
        states = optimizer_state.get("state", {})
        if not preconditioner_spec(optimizer_name).preconditioner.needs_state:  # SGD, L-BFGS
            keep = list(range(len(space.index)))
        else:
            keep = [j for j, i in enumerate(space.index) if states.get(i, states.get(str(i)))]
        self.op, self.keep = op, keep
        self.P = preconditioner_from_state(optimizer_name, optimizer_state, all_params, hparams,
                                           select=[space.index[j] for j in keep])
        self.coords = None
        if len(keep) < len(space.index):
            offsets = np.cumsum([0] + [p.numel() for p in space.params])
            self.coords = torch.cat([torch.arange(int(offsets[j]), int(offsets[j + 1])) for j in keep])

    def beside(self, common: dict, before: int | None, make_op: Callable, backbone, named: list) -> Beside | None:
        """`spectrum` in a thread, on `make_op(copy of backbone, its named parameters)` built by that thread,
        where the machine's memory holds a second operator (`before`: resident bytes before the first)."""
        if not _room_for(self.op, before):
            return None
        twin = copy.deepcopy((backbone, named))
        return Beside(self.spectrum, common, functools.partial(make_op, *twin), name="optbench-curvature")

    def spectrum(self, common: dict, build: Callable | None = None) -> dict:
        """The spectrum summary of P^1/2 H P^1/2, on `op`, or on the operator `build()` makes here (in the
        thread that differentiates it)."""
        op = self.op if build is None else build()
        matvec, dim = op, op.dim
        if self.coords is not None:
            matvec, dim = SubspaceOperator(op, op.dim, self.coords), int(self.coords.numel())
        pre, _ = spectrum_summary(preconditioned(matvec, self.P), dim, vectors=False,
                                  label=f"P^1/2HP^1/2 ({self.P.name})", **common)
        space = op.space
        pre["params_without_state"] = [space.names[j] for j in range(len(space.index)) if j not in set(self.keep)]
        return pre

    def record(self, pre: dict, hrun: LanczosResult, k: int, beside: bool) -> dict:
        """"preconditioner", "preconditioned" (the spectrum), P's "spectral_filter" along H's top eigenvectors,
        and "preconditioned_beside" (whether the spectrum ran in a thread beside H's)."""
        P = self.P
        return {"preconditioner": {"optimizer": P.name, "trace": P.trace(), "mean_scale": P.trace() / max(P.dim, 1),
                                   **P.info},
                "preconditioned": pre, "spectral_filter": spectral_filter(hrun, P, k, self.coords),
                "preconditioned_beside": beside}


def spectral_filter(hrun: LanczosResult, P: Preconditioner, k: int, coords: torch.Tensor | None = None) -> dict:
    """How much P scales each of H's top eigendirections u_i: r_i = u_i^T P u_i, relative to P's mean
    scale tr(P)/n, and the curvature the update sees there, λ_i r_i."""
    lam, _ = hrun.top(k)
    vecs = hrun.top_vectors(k)
    mean = P.trace() / max(P.dim, 1)
    r = []
    for u in vecs:
        u = u if coords is None else u[coords]
        r.append(P.rayleigh(u) if float(torch.dot(u, u)) > 0 else float("nan"))
    r = np.array(r)
    return {
        "hessian_eigenvalues": lam,
        "rayleigh_P": r,
        "relative_gain": r / mean if mean > 0 else np.full_like(r, np.nan),
        "effective_curvature": lam * r,
        "mean_scale": mean,
    }
