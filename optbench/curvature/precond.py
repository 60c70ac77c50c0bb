"""Each optimizer's preconditioner P, read from its saved state: the linear map from a (steady)
gradient to the update, update ≈ -P g. Units: parameter units^2 per loss unit (lr included).

Diagonal rules (Adam, AdamW, RAdam, Ranger, ScheduleFree, LAMB) apply exactly the bias corrections and
eps placement of the library that wrote the state (Ranger without gradient centralisation,
which optbench turns off in training too); momentum averages are taken at their steady gain.
SGD is lr times momentum's effective step; L-BFGS is lr times the two-loop inverse-Hessian estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from optbench.errors import InputError

_DT = torch.float64
DIAGONAL = ("adam", "adamw", "radam", "ranger", "schedulefree", "lamb")
SUPPORTED = (*DIAGONAL, "sgd", "lbfgs")


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


def _num(x) -> float:
    return float(x.item() if hasattr(x, "item") else x)


def group_lr(g: dict) -> float:
    """The group's current lr (as a scheduler left it); its initial_lr when a schedule ended at 0."""
    lr = float(g["lr"])
    return lr if lr > 0 or "initial_lr" not in g else float(g["initial_lr"])


def _diag_block(name: str, st: dict, g: dict) -> tuple[torch.Tensor, dict]:
    """Diagonal of P for one parameter tensor (flat float64) and what went into it."""
    beta1, beta2 = (float(b) for b in g.get("betas", (0.9, 0.999)))
    eps, lr = float(g["eps"]), group_lr(g)
    if name in ("adam", "adamw"):
        t = _num(st["step"])
        v = st["max_exp_avg_sq"] if g.get("amsgrad") and "max_exp_avg_sq" in st else st["exp_avg_sq"]
        bc2 = 1 - beta2**t
        return lr / ((v.to(_DT) / bc2).sqrt() + eps), {"step": t, "bias_correction2": bc2}
    if name == "radam":  # torch.optim.RAdam: sqrt(bc2) / (sqrt(v) + eps), rectified when rho_t > 5
        t = _num(st["step"])
        v = st["exp_avg_sq"].to(_DT)
        bc2 = 1 - beta2**t
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / bc2
        if rho_t > 5:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return lr * rect * math.sqrt(bc2) / (v.sqrt() + eps), {"step": t, "rectified": True, "rect": rect}
        return torch.full_like(v, lr), {"step": t, "rectified": False}
    if name == "schedulefree":  # z -= lr_t * g / (sqrt(v / bc2) + eps), bc2 = 1 - beta2^k
        k = int(g["k"])
        bc2 = 1 - beta2**k
        warm = int(g.get("warmup_steps", 0))
        sched = k / warm if k <= warm and warm > 0 else 1.0
        v = st["exp_avg_sq"].to(_DT)
        return lr * sched / ((v / bc2).sqrt() + eps), {"step": k, "bias_correction2": bc2, "warmup_factor": sched}
    if name == "lamb":  # pytorch_optimizer.Lamb: (lr / bc1) m / (sqrt(v) + eps), times the trust ratio
        t = int(g["step"])
        v = st["exp_avg_sq"].to(_DT)
        bc1 = 1 - beta1**t
        beta3 = 1 - beta1 if g.get("grad_averaging", True) else 1.0
        step_size = lr if g.get("adam_debias", False) else lr / bc1
        gain = step_size * beta3 * (1 - beta1**t) / (1 - beta1)  # steady-state m = gain_m * g
        trust = 1.0 if g.get("adam") else _num(st.get("trust_ratio", 1.0))
        return gain * trust / (v.sqrt() + eps), {"step": t, "trust_ratio": trust}
    if name == "ranger":  # pytorch_optimizer.Ranger: RAdam (rt holds sqrt(bc2)), Lookahead factor alpha
        t = int(g["step"])
        v = st["exp_avg_sq"].to(_DT)
        n_sma_max = 2 / (1 - beta2) - 1
        b2t = beta2**t
        n_sma = n_sma_max - 2 * t * b2t / (1 - b2t)
        alpha = float(g.get("alpha", 0.5))
        threshold = int(g.get("n_sma_threshold", 5))
        if n_sma >= threshold:
            rt = math.sqrt((1 - b2t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max / (n_sma_max - 2))
            return alpha * lr * rt / (v.sqrt() + eps), {"step": t, "rectified": True, "rt": rt, "lookahead_alpha": alpha}
        # below the threshold pytorch_optimizer steps with lr * rt, rt = -1 unless degenerated_to_sgd
        # (optbench's registry sets it): an uphill step along the momentum, which P = -lr reproduces
        rt = 1.0 if g.get("degenerated_to_sgd", False) else -1.0
        return torch.full_like(v, alpha * lr * rt), {"step": t, "rectified": False, "rt": rt, "lookahead_alpha": alpha}
    raise AssertionError(name)


def sgd_gain(g: dict) -> float:
    """lr times momentum's steady-state step: lr(1-d)/(1-μ), Nesterov lr(1 + μ(1-d)/(1-μ))."""
    lr, mu, d = group_lr(g), float(g.get("momentum", 0.0)), float(g.get("dampening", 0.0))
    if mu == 0:
        return lr
    if g.get("nesterov"):
        return lr * (1 + mu * (1 - d) / (1 - mu))
    return lr * (1 - d) / (1 - mu)


def canonical_name(optimizer_name: str) -> str:
    """Registry name of an optimizer ('adam', ...; 'torch.optim:Adam' -> 'adam')."""
    name = optimizer_name.lower()
    if ":" in name:
        name = name.split(":", 1)[1]
    name = {"adamwschedulefree": "schedulefree", "lbfgs": "lbfgs"}.get(name, name)
    if name not in SUPPORTED:
        raise InputError(f"no preconditioner model for optimizer '{optimizer_name}' (known: {', '.join(SUPPORTED)})", field="optimizer")
    return name


def preconditioner_from_state(
    optimizer_name: str,
    state_dict: dict,
    params: Sequence[torch.Tensor],
    hparams: dict | None = None,
    *,
    select: Sequence[int] | None = None,
) -> Preconditioner:
    """P of `optimizer_name` from `optimizer.state_dict()`, over `params[i] for i in select`.

    `params` is the optimizer's parameter list (state index i == params[i]); `hparams` override the
    saved group values (e.g. {"lr": 1e-3}). Parameters without state (never stepped) raise InputError;
    pass `select` to leave them out.
    """
    name = canonical_name(optimizer_name)
    select = list(range(len(params))) if select is None else [int(i) for i in select]
    # options a library keeps outside the param groups (Ranger's degenerated_to_sgd) come from
    # optbench's registry defaults, which built the optimizer, unless `hparams` says otherwise
    from optbench.optim import get_spec

    defaults = get_spec(name).defaults
    groups = {i: {**defaults, **g} for i, g in _group_of(state_dict).items()}
    overrides = dict(hparams or {})
    if name == "ranger" and overrides.get("use_gc", defaults.get("use_gc", True)):
        raise InputError("Ranger with gradient centralisation (use_gc=True) has no preconditioner model; "
                         "optbench trains Ranger with use_gc=False", field="optimizer_kwargs.use_gc")
    states = state_dict.get("state", {})
    if name == "lbfgs":
        return _lbfgs(states, groups, params, select, overrides)
    blocks, infos = [], []
    for i in select:
        g = {**groups.get(i, {}), **overrides}
        if name == "sgd":
            blocks.append(torch.full((params[i].numel(),), sgd_gain(g), dtype=_DT))
            continue
        st = states.get(i, states.get(str(i)))
        if not st:
            raise InputError(f"optimizer state has no entry for parameter {i}", field="optimizer_state")
        diag, info = _diag_block(name, st, g)
        blocks.append(diag.reshape(-1))
        infos.append(info)
    diag = torch.cat(blocks) if blocks else torch.zeros(0, dtype=_DT)
    first = {**groups.get(select[0], {}), **overrides} if select else {}
    info = {"optimizer": name, "lr": group_lr(first) if "lr" in first else None,
            "initial_lr": first.get("initial_lr")}
    if name == "sgd":
        info["effective_lr"] = float(diag[0]) if diag.numel() else None
    elif infos:
        info["step"] = infos[0].get("step")
        for key in ("rectified", "lookahead_alpha", "bias_correction2", "warmup_factor"):
            if key in infos[0]:
                info[key] = infos[0][key]
        if name == "lamb":
            trust = [x["trust_ratio"] for x in infos]
            info["trust_ratio"] = {"min": min(trust), "max": max(trust), "mean": sum(trust) / len(trust)}
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
    return LBFGSPreconditioner(st["old_stps"], st["old_dirs"], st["ro"], _num(st["H_diag"]), lr, full_dim, coords)
