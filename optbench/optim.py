"""One registry of optimizers: name -> factory, with each rule's quirks handled here.

Quirks kept in one place: ScheduleFree's train/eval switch (evaluation and saving use its
eval weights), L-BFGS's closure and line search, Ranger's Lookahead (inside pytorch-optimizer)
and its warm-up steps, Ranger's gradient centralisation (off, see the registry).
Any torch optimizer is available as `module:Class`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from optbench.errors import InputError


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    factory: Callable[..., torch.optim.Optimizer]
    defaults: dict[str, Any] = field(default_factory=dict)
    second_order: bool = False  # uses the closure several times per step (line search)
    eval_switch: bool = False  # has .train()/.eval() weight modes (ScheduleFree)
    supports_schedule: bool = True


def _torch(name: str) -> Callable[..., torch.optim.Optimizer]:
    return lambda params, **kw: getattr(torch.optim, name)(params, **kw)


def _pytorch_optimizer(name: str) -> Callable[..., torch.optim.Optimizer]:
    def make(params, **kw):
        import pytorch_optimizer

        return getattr(pytorch_optimizer, name)(params, **kw)

    return make


def _schedulefree(params, **kw):
    import schedulefree

    return schedulefree.AdamWScheduleFree(params, **kw)


REGISTRY: dict[str, OptimizerSpec] = {}


def register_optimizer(spec: OptimizerSpec) -> None:
    """Add (or replace) an optimizer under `spec.name`."""
    REGISTRY[spec.name] = spec


for _spec in (
    OptimizerSpec("adam", _torch("Adam")),
    OptimizerSpec("adamw", _torch("AdamW"), {"weight_decay": 1e-2}),
    OptimizerSpec("radam", _torch("RAdam")),
    OptimizerSpec("sgd", _torch("SGD"), {"momentum": 0.9, "nesterov": True}),
    OptimizerSpec("lamb", _pytorch_optimizer("Lamb")),
    # pytorch-optimizer's Ranger turns the RAdam warm-up sentinel (rt = -1) into a step of +lr
    # along the momentum, i.e. gradient *ascent* for the first ~5 steps, unless it degenerates to
    # SGD there, as the original RAdam/Ranger do. Gradient centralisation (the library default
    # use_gc=True) is off: the curvature analysis models Ranger's P without it, so training and
    # analysis see the same rule (RAdam + Lookahead); curvature refuses a run with use_gc=True.
    OptimizerSpec("ranger", _pytorch_optimizer("Ranger"), {"degenerated_to_sgd": True, "use_gc": False}),
    OptimizerSpec("schedulefree", _schedulefree, {"warmup_steps": 0}, eval_switch=True, supports_schedule=False),
    OptimizerSpec(
        "lbfgs", _torch("LBFGS"), {"max_iter": 1, "max_eval": 10, "history_size": 20, "line_search_fn": "strong_wolfe"},
        second_order=True, supports_schedule=False,
    ),
):
    register_optimizer(_spec)

FIRST_ORDER = ("adam", "adamw", "radam", "sgd", "lamb", "ranger", "schedulefree")


def _import_class(name: str, module: str, cls: str):
    """The class `cls` of `module`. The module must be found before it is imported; importing it
    runs its top-level code, as any Python import does (it is the user's own code)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as err:
        raise InputError(f"cannot find module of optimizer '{name}' ({err})", field="optimizer") from None
    if found is None:
        raise InputError(f"no module '{module}' for optimizer '{name}'", field="optimizer")
    try:
        return getattr(importlib.import_module(module), cls)
    except AttributeError:
        raise InputError(f"module '{module}' has no class '{cls}'", field="optimizer") from None
    except Exception as err:  # the module's own code failed at import
        raise InputError(f"importing optimizer '{name}' failed ({type(err).__name__}: {err})", field="optimizer") from None


def get_spec(name: str) -> OptimizerSpec:
    """The registry entry for `name`, or a spec for an importable `module:Class`."""
    key = name.lower()
    if key in REGISTRY:
        return REGISTRY[key]
    if ":" in name:
        module, cls = name.split(":", 1)
        klass = _import_class(name, module, cls)
        if not (isinstance(klass, type) and issubclass(klass, torch.optim.Optimizer)):
            raise InputError(f"'{name}' is not a torch.optim.Optimizer subclass", field="optimizer")
        return OptimizerSpec(name, lambda params, **kw: klass(params, **kw), eval_switch=hasattr(klass, "eval"))
    known = ", ".join(sorted(REGISTRY))
    raise InputError(f"unknown optimizer '{name}' (known: {known}, or module:Class)", field="optimizer")


def build_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float | None = None, **kwargs: Any
) -> torch.optim.Optimizer:
    """A ready optimizer: registry defaults, then `weight_decay`, then `kwargs` override."""
    spec = get_spec(name)
    options = {**spec.defaults, "lr": lr}
    if weight_decay is not None:
        options["weight_decay"] = weight_decay
    options.update(kwargs)
    try:
        opt = spec.factory(list(params), **options)
    except TypeError as err:
        raise InputError(f"bad option for optimizer '{name}': {err}", field="optimizer_kwargs") from None
    except Exception as err:  # torch's ValueError on a bad value, or a user optimizer that raises
        raise InputError(f"optimizer '{name}' refused its options ({type(err).__name__}: {err})",
                         field="optimizer_kwargs") from None
    set_mode(opt, train=True)
    return opt


def set_mode(opt: torch.optim.Optimizer, *, train: bool) -> None:
    """Switch optimizers with separate train/eval weights (ScheduleFree); a no-op for others."""
    method = getattr(opt, "train" if train else "eval", None)
    if callable(method) and hasattr(opt, "eval") and hasattr(opt, "train"):
        method()
