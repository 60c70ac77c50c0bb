"""The built-in optimizers, one `OptimizerSpec` each: the only place their names are written.

Each entry carries its quirks and its preconditioner model P (update ≈ -P g, parameter units^2
per loss unit, lr included), which applies exactly the bias corrections and eps placement of
the library that wrote the state; momentum averages are taken at their steady gain.
`lr_range`: the LR range test of `optbench.study.lr_range.lr_range_test` (CHGNet 0.3.0, one
fixed batch of 4 training structures of the built-in suite, LR swept from 1e-6 to 10 over 40
steps, seed 0, the entry's defaults; `bench/lr_ranges.py`), per suite (lr_steepest, lr_diverged),
two significant digits; the comments give the smoothed loss of the batch (loss units) start ->
minimum, per suite in the same order. Molecular: run 2026-11-25, rerun 2026-11-26 with the same
values; crystal: rerun 2026-11-26 on the plane-wave DFT (GPAW PBEsol) set, which replaced the
GFN1-xTB set of the 2026-11-25 values (its batch loss starts at 0.525, not 0.217, and every
optimizer blows up at a lower LR: adam/adamw 0.0089 against 0.37); liquid and interface: first run
2026-11-26. The built-in studies place their grids with it (see optbench.study.presets).
To add an optimizer: one more entry here, or `register_optimizer(OptimizerSpec(...))` anywhere.
"""

from __future__ import annotations

import math

from optbench.optim.recipe import Recipe
from optbench.optim.spec import (
    REGISTRY,
    OptimizerSpec,
    PreconditionerModel,
    group_lr,
    num,
    register_optimizer,
)


def _betas(g: dict) -> tuple[float, float]:
    beta1, beta2 = (float(b) for b in g.get("betas", (0.9, 0.999)))
    return beta1, beta2


def _adam(st: dict, g: dict):
    _, beta2 = _betas(g)
    eps, lr = float(g["eps"]), group_lr(g)
    t = num(st["step"])
    v = st["max_exp_avg_sq"] if g.get("amsgrad") and "max_exp_avg_sq" in st else st["exp_avg_sq"]
    bc2 = 1 - beta2**t
    return lr / ((v.double() / bc2).sqrt() + eps), {"step": t, "bias_correction2": bc2}


def _radam(st: dict, g: dict):
    """torch.optim.RAdam: sqrt(bc2) / (sqrt(v) + eps), rectified when rho_t > 5."""
    _, beta2 = _betas(g)
    eps, lr = float(g["eps"]), group_lr(g)
    t = num(st["step"])
    v = st["exp_avg_sq"].double()
    bc2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bc2
    if rho_t > 5:
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return lr * rect * math.sqrt(bc2) / (v.sqrt() + eps), {"step": t, "rectified": True, "rect": rect}
    return v.new_full(v.shape, lr), {"step": t, "rectified": False}


def _sgd(g: dict) -> float:
    """lr times momentum's steady-state step: lr(1-d)/(1-μ), Nesterov lr(1 + μ(1-d)/(1-μ))."""
    lr, mu, d = group_lr(g), float(g.get("momentum", 0.0)), float(g.get("dampening", 0.0))
    if mu == 0:
        return lr
    if g.get("nesterov"):
        return lr * (1 + mu * (1 - d) / (1 - mu))
    return lr * (1 - d) / (1 - mu)


def _lamb(st: dict, g: dict):
    """pytorch_optimizer.Lamb: (lr / bc1) m / (sqrt(v) + eps), times the trust ratio."""
    beta1, _ = _betas(g)
    eps, lr = float(g["eps"]), group_lr(g)
    t = int(g["step"])
    v = st["exp_avg_sq"].double()
    bc1 = 1 - beta1**t
    beta3 = 1 - beta1 if g.get("grad_averaging", True) else 1.0
    step_size = lr if g.get("adam_debias", False) else lr / bc1
    gain = step_size * beta3 * (1 - beta1**t) / (1 - beta1)  # steady-state m = gain_m * g
    trust = 1.0 if g.get("adam") else num(st.get("trust_ratio", 1.0))
    return gain * trust / (v.sqrt() + eps), {"step": t, "trust_ratio": trust}


def _trust_ratios(infos: list[dict]) -> dict:
    trust = [x["trust_ratio"] for x in infos]
    return {"trust_ratio": {"min": min(trust), "max": max(trust), "mean": sum(trust) / len(trust)}}


def _ranger(st: dict, g: dict):
    """pytorch_optimizer.Ranger: RAdam (rt holds sqrt(bc2)), Lookahead factor alpha."""
    _, beta2 = _betas(g)
    eps, lr = float(g["eps"]), group_lr(g)
    t = int(g["step"])
    v = st["exp_avg_sq"].double()
    n_sma_max = 2 / (1 - beta2) - 1
    b2t = beta2**t
    n_sma = n_sma_max - 2 * t * b2t / (1 - b2t)
    alpha = float(g.get("alpha", 0.5))
    threshold = int(g.get("n_sma_threshold", 5))
    if n_sma >= threshold:
        rt = math.sqrt((1 - b2t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max / (n_sma_max - 2))
        return alpha * lr * rt / (v.sqrt() + eps), {"step": t, "rectified": True, "rt": rt, "lookahead_alpha": alpha}
    # below the threshold pytorch_optimizer steps with lr * rt, rt = -1 unless degenerated_to_sgd
    # (the entry's defaults set it): an uphill step along the momentum, which P = -lr reproduces
    rt = 1.0 if g.get("degenerated_to_sgd", False) else -1.0
    return v.new_full(v.shape, alpha * lr * rt), {"step": t, "rectified": False, "rt": rt, "lookahead_alpha": alpha}


def _ranger_refuses(options: dict) -> tuple[str, str] | None:
    if options.get("use_gc", True):
        return ("Ranger with gradient centralisation (use_gc=True) has no preconditioner model; "
                "optbench trains Ranger with use_gc=False", "optimizer_kwargs.use_gc")
    return None


def _schedulefree(st: dict, g: dict):
    """z -= lr_t * g / (sqrt(v / bc2) + eps), bc2 = 1 - beta2^k."""
    _, beta2 = _betas(g)
    eps, lr = float(g["eps"]), group_lr(g)
    k = int(g["k"])
    bc2 = 1 - beta2**k
    warm = int(g.get("warmup_steps", 0))
    sched = k / warm if k <= warm and warm > 0 else 1.0
    v = st["exp_avg_sq"].double()
    return lr * sched / ((v / bc2).sqrt() + eps), {"step": k, "bias_correction2": bc2, "warmup_factor": sched}


def _diagonal(rule, **kw) -> PreconditionerModel:
    return PreconditionerModel("diagonal", rule, **kw)


for _spec in (
    OptimizerSpec("adam", cls="torch.optim:Adam", preconditioner=_diagonal(_adam),
                  lr_range={"molecular": (0.0011, 0.11), "crystal": (0.0011, 0.0089),  # 0.883 -> 0.324, 0.525 -> 0.136
                            "liquid": (0.0017, 0.031), "interface": (0.0017, 0.013)}),  # 2.406 -> 0.421, 2.570 -> 0.429
    OptimizerSpec("adamw", cls="torch.optim:AdamW", defaults={"weight_decay": 1e-2}, preconditioner=_diagonal(_adam),
                  lr_range={"molecular": (0.0011, 0.11), "crystal": (0.0011, 0.0089),  # 0.883 -> 0.324, 0.525 -> 0.136
                            "liquid": (0.0017, 0.031), "interface": (0.0017, 0.013)}),  # 2.406 -> 0.421, 2.570 -> 0.430
    OptimizerSpec("radam", cls="torch.optim:RAdam", preconditioner=_diagonal(_radam),
                  lr_range={"molecular": (0.013, 1.3), "crystal": (0.0089, 0.24),  # 0.883 -> 0.336, 0.525 -> 0.136
                            "liquid": (0.02, 0.37), "interface": (0.02, 0.16)}),  # 2.406 -> 0.473, 2.570 -> 0.472
    OptimizerSpec("sgd", cls="torch.optim:SGD", defaults={"momentum": 0.9, "nesterov": True},
                  preconditioner=PreconditionerModel("scalar", _sgd),
                  lr_range={"molecular": (0.0039, 0.031), "crystal": (0.00074, 0.046),  # 0.883 -> 0.334, 0.525 -> 0.184
                            "liquid": (0.00049, 0.013), "interface": (0.0089, 0.02)}),  # 2.406 -> 1.076, 2.570 -> 1.136
    OptimizerSpec("lamb", cls="pytorch_optimizer:Lamb", preconditioner=_diagonal(_lamb, summary=_trust_ratios),
                  lr_range={"molecular": (0.0026, 0.11), "crystal": (0.0017, 0.0089),  # 0.883 -> 0.331, 0.525 -> 0.126
                            "liquid": (0.0039, 0.031), "interface": (0.0039, 0.031)}),  # 2.406 -> 0.401, 2.570 -> 0.440
    # pytorch-optimizer's Ranger turns the RAdam warm-up sentinel (rt = -1) into a step of +lr
    # along the momentum, i.e. gradient *ascent* for the first ~5 steps, unless it degenerates to
    # SGD there, as the original RAdam/Ranger do. Gradient centralisation (the library default
    # use_gc=True) is off: the preconditioner model is Ranger's P without it, so training and
    # analysis see the same rule (RAdam + Lookahead); curvature refuses a run with use_gc=True.
    OptimizerSpec("ranger", cls="pytorch_optimizer:Ranger", defaults={"degenerated_to_sgd": True, "use_gc": False},
                  preconditioner=_diagonal(_ranger, refuse=_ranger_refuses),
                  lr_range={"molecular": (0.0089, 0.11), "crystal": (0.0089, 0.07),  # 0.883 -> 0.382, 0.525 -> 0.142
                            "liquid": (0.031, 0.16), "interface": (0.031, 0.16)}),  # 2.406 -> 0.550, 2.570 -> 0.586
    # ScheduleFree evaluates and saves its eval weights (the train/eval switch); no LR schedule
    OptimizerSpec("schedulefree", cls="schedulefree:AdamWScheduleFree", defaults={"warmup_steps": 0},
                  eval_switch=True, supports_schedule=False, preconditioner=_diagonal(_schedulefree),
                  lr_range={"molecular": (0.0017, 0.02), "crystal": (0.0011, 0.013),  # 0.883 -> 0.112, 0.525 -> 0.044
                            "liquid": (0.0017, 0.031), "interface": (0.0017, 0.046)}),  # 2.406 -> 0.144, 2.570 -> 0.123
    # L-BFGS: the closure and a line search each step; P = lr · its two-loop inverse-Hessian estimate
    OptimizerSpec("lbfgs", cls="torch.optim:LBFGS",
                  defaults={"max_iter": 1, "max_eval": 10, "history_size": 20, "line_search_fn": "strong_wolfe"},
                  second_order=True, supports_schedule=False, preconditioner=PreconditionerModel("lbfgs")),
    # MACE's fine-tuning as a baseline, not one of the compared seven (no LR range measured):
    # torch Adam, amsgrad on (MACE's --amsgrad, default True) and coupled L2 weight decay 5e-7 (its
    # --weight_decay; MACE leaves readouts and embeddings undecayed, optbench decays every trained
    # tensor), betas (0.9, 0.999) (its --beta); the recipe (optbench.optim.recipe) holds the rest
    OptimizerSpec("mace_recipe", cls="torch.optim:Adam", defaults={"amsgrad": True, "weight_decay": 5e-7},
                  supports_schedule=False, preconditioner=_diagonal(_adam), recipe=Recipe()),
):
    register_optimizer(_spec)

# the first-order optimizers the built-in studies compare (those with a measured LR range), in order
FIRST_ORDER = tuple(name for name, spec in REGISTRY.items() if spec.lr_range)
