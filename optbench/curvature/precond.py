"""Each optimizer's preconditioner P, read from its saved state: the linear map from a (steady)
gradient to the update, update ≈ -P g. Units: parameter units^2 per loss unit (lr included).

The rule per optimizer is its registry entry's `PreconditionerModel` (optbench.optim.builtin):
diagonal (Adam, AdamW, RAdam, Ranger, ScheduleFree, LAMB), scalar (SGD: lr times momentum's
effective step) or L-BFGS (lr times the two-loop inverse-Hessian estimate); here are the
operators and the reading of the state. An optimizer without a model is refused
(NoPreconditionerModel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from optbench.errors import InputError
from optbench.optim.spec import group_lr, num, preconditioner_spec

_DT = torch.float64


class Preconditioner:
    """A symmetric operator P = sign · S, S positive semi-definite, on a flat float64 space of size
    `dim`; `apply_sqrt` applies S^1/2 (sign is -1 only for a rule that steps uphill, see Ranger)."""

    name = "preconditioner"
    sign = 1.0
    dim: int
    info: dict

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply_sqrt(self, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def trace(self) -> float:
        raise NotImplementedError

    def rayleigh(self, u: torch.Tensor) -> float:
        """u^T P u / u^T u."""
        return float(torch.dot(u, self.apply(u)) / torch.dot(u, u))


class DiagonalPreconditioner(Preconditioner):
    def __init__(self, diag: torch.Tensor, name: str, info: dict | None = None):
        self.diag = diag.to(_DT)
        if self.diag.numel() and bool((self.diag < 0).all()):
            self.sign = -1.0
        elif bool((self.diag < 0).any()):
            raise ValueError("a diagonal preconditioner must not mix signs")
        self._sqrt = self.diag.abs().sqrt()
        self.dim = self.diag.numel()
        self.name = name
        self.info = info or {}

    def apply(self, v):
        return self.diag * v

    def apply_sqrt(self, v):
        return self._sqrt * v

    def trace(self):
        return float(self.diag.sum())


class LBFGSPreconditioner(Preconditioner):
    """lr · H_k, H_k the L-BFGS inverse-Hessian estimate (two-loop recursion) from its history.

    `select` picks flat coordinates (a sub-block of H_k). H_k = γI + U M U^T with U = [s, y], so on
    the orthonormal basis Q of span(U) the square root is exact: P^1/2 = √γ(I - QQ^T) + Q B^1/2 Q^T,
    B = Q^T P Q computed with the two-loop recursion itself.
    """

    name = "lbfgs"

    def __init__(self, old_stps, old_dirs, ro, h_diag, lr: float, full_dim: int, select: torch.Tensor | None = None):
        self.full_dim = full_dim
        self.select = select
        self.s = [torch.as_tensor(s).detach().to(_DT).reshape(-1) for s in old_stps]
        self.y = [torch.as_tensor(y).detach().to(_DT).reshape(-1) for y in old_dirs]
        self.ro = [float(r) for r in ro]
        self.gamma = float(h_diag)
        self.lr = float(lr)
        self.dim = full_dim if select is None else int(select.numel())
        self.info = {"history": len(self.s), "H_diag": self.gamma, "lr": self.lr}
        self._build_sqrt()

    def _two_loop(self, g: torch.Tensor) -> torch.Tensor:
        q = g.clone()
        al = [0.0] * len(self.s)
        for i in range(len(self.s) - 1, -1, -1):
            al[i] = float(torch.dot(self.s[i], q)) * self.ro[i]
            q.add_(self.y[i], alpha=-al[i])
        r = q * self.gamma
        for i in range(len(self.s)):
            be = float(torch.dot(self.y[i], r)) * self.ro[i]
            r.add_(self.s[i], alpha=al[i] - be)
        return r

    def apply(self, v):
        if self.select is None:
            return self.lr * self._two_loop(v.to(_DT))
        full = torch.zeros(self.full_dim, dtype=_DT)
        full[self.select] = v.to(_DT)
        return self.lr * self._two_loop(full)[self.select]

    def _build_sqrt(self) -> None:
        if not self.s:
            self.Q = torch.zeros(self.dim, 0, dtype=_DT)
            self.B_sqrt = torch.zeros(0, 0, dtype=_DT)
            self.B_trace = 0.0
            return
        cols = self.s + self.y
        U = torch.stack([c if self.select is None else c[self.select] for c in cols], dim=1)
        W, sv, _ = torch.linalg.svd(U, full_matrices=False)
        keep = sv > sv.max() * 1e-10
        self.Q = W[:, keep]
        PQ = torch.stack([self.apply(self.Q[:, j]) for j in range(self.Q.shape[1])], dim=1)
        B = self.Q.T @ PQ
        mu, E = torch.linalg.eigh(0.5 * (B + B.T))
        self.info["min_eig_in_span"] = float(mu.min())
        self.B_sqrt = E @ torch.diag(mu.clamp_min(0).sqrt()) @ E.T
        self.B_trace = float(mu.sum())

    def apply_sqrt(self, v):
        v = v.to(_DT)
        c = self.Q.T @ v
        return math.sqrt(self.lr * self.gamma) * (v - self.Q @ c) + self.Q @ (self.B_sqrt @ c)

    def trace(self):
        return self.lr * self.gamma * (self.dim - self.Q.shape[1]) + self.B_trace


# ------------------------------------------------------------------------ reading states
def _group_of(state_dict: dict) -> dict[int, dict]:
    out = {}
    for group in state_dict.get("param_groups", []):
        for i in group["params"]:
            out[int(i)] = group
    return out


def canonical_name(optimizer_name: str) -> str:
    """Registry name of the entry whose preconditioner model applies ('adam', ...; 'torch.optim:Adam'
    -> 'adam'); NoPreconditionerModel (an InputError) when there is none."""
    spec = preconditioner_spec(optimizer_name)
    return spec.model_of or spec.name


def preconditioner_from_state(
    optimizer_name: str,
    state_dict: dict,
    params: Sequence[torch.Tensor],
    hparams: dict | None = None,
    *,
    select: Sequence[int] | None = None,
) -> Preconditioner:
    """P of `optimizer_name` from `optimizer.state_dict()`, over `params[i] for i in select`, with the
    preconditioner model of its registry entry (`OptimizerSpec.preconditioner`).

    `params` is the optimizer's parameter list (state index i == params[i]); `hparams` override the
    saved group values (e.g. {"lr": 1e-3}). Parameters without state (never stepped) raise InputError;
    pass `select` to leave them out. An optimizer without a model raises NoPreconditionerModel.
    """
    spec = preconditioner_spec(optimizer_name)
    model = spec.preconditioner
    name = spec.model_of or spec.name
    select = list(range(len(params))) if select is None else [int(i) for i in select]
    # options a library keeps outside the param groups (Ranger's degenerated_to_sgd) come from
    # the registry defaults, which built the optimizer, unless `hparams` says otherwise
    groups = {i: {**spec.defaults, **g} for i, g in _group_of(state_dict).items()}
    overrides = dict(hparams or {})
    refused = model.refuse({**spec.defaults, **overrides}) if model.refuse else None
    if refused:
        raise InputError(refused[0], field=refused[1])
    states = state_dict.get("state", {})
    if model.kind == "lbfgs":
        return _lbfgs(states, groups, params, select, overrides)
    blocks, infos = [], []
    for i in select:
        g = {**groups.get(i, {}), **overrides}
        if model.kind == "scalar":
            blocks.append(torch.full((params[i].numel(),), model.rule(g), dtype=_DT))
            continue
        st = states.get(i, states.get(str(i)))
        if not st:
            raise InputError(f"optimizer state has no entry for parameter {i}", field="optimizer_state")
        diag, info = model.rule(st, g)
        blocks.append(diag.reshape(-1))
        infos.append(info)
    diag = torch.cat(blocks) if blocks else torch.zeros(0, dtype=_DT)
    first = {**groups.get(select[0], {}), **overrides} if select else {}
    info = {"optimizer": name, "lr": group_lr(first) if "lr" in first else None,
            "initial_lr": first.get("initial_lr")}
    if model.kind == "scalar":
        info["effective_lr"] = float(diag[0]) if diag.numel() else None
    elif infos:
        info["step"] = infos[0].get("step")
        for key in ("rectified", "lookahead_alpha", "bias_correction2", "warmup_factor"):
            if key in infos[0]:
                info[key] = infos[0][key]
        if model.summary:
            info.update(model.summary(infos))
    return DiagonalPreconditioner(diag, name, info)


def _lbfgs(states, groups, params, select, overrides) -> LBFGSPreconditioner:
    st = states.get(0, states.get("0"))
    g = {**groups.get(0, {}), **overrides}
    sizes = [p.numel() for p in params]
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    full_dim = offsets[-1]
    coords = None
    if select != list(range(len(params))):
        coords = torch.cat([torch.arange(offsets[i], offsets[i + 1]) for i in select]) if select else torch.zeros(0, dtype=torch.long)
    lr = group_lr(g) if "lr" in g else 1.0
    if not st or not st.get("old_dirs"):
        return LBFGSPreconditioner([], [], [], 1.0, lr, full_dim, coords)
    for y in st["old_dirs"]:
        if y.numel() != full_dim:
            raise InputError(f"L-BFGS history has length {y.numel()}, the parameters {full_dim}", field="optimizer_state")
    return LBFGSPreconditioner(st["old_stps"], st["old_dirs"], st["ro"], num(st["H_diag"]), lr, full_dim, coords)
