"""The optimizer registry: one `OptimizerSpec` per optimizer, carrying everything about it.

A spec holds the factory (or the `module:Class` it builds), the registry defaults (quirks such as
Ranger's settings), ScheduleFree's train/eval switch, L-BFGS's closure, the measured LR range
tests the built-in studies place their grids with, the preconditioner model that the
curvature analysis reads P from, and the training recipe that comes with it (optbench.optim.recipe).
Any torch optimizer is available as `module:Class`; one that is the class of a registry entry
shares that entry's preconditioner model.

Importing this module does not import torch (the CLI lists the names from it).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from optbench.errors import InputError

if TYPE_CHECKING:
    import torch

    from optbench.optim.recipe import Recipe


class NoPreconditionerModel(InputError):
    """The optimizer has no preconditioner model, so curvature cannot read P from its state."""


@dataclass(frozen=True)
class PreconditionerModel:
    """How the curvature analysis reads an optimizer's preconditioner P (update ≈ -P g) from its state.

    kind "diagonal": `rule(state, group) -> (diag, info)` per parameter tensor (diag flat float64);
    kind "scalar": `rule(group) -> gain`, P = gain·I, no per-parameter state needed;
    kind "lbfgs": the two-loop inverse-Hessian estimate of torch.optim.LBFGS's history.
    `refuse(options) -> reason | None` names options the model does not cover (e.g. Ranger's use_gc);
    `summary(infos) -> dict` condenses the per-tensor infos (e.g. LAMB's trust ratios).
    """

    kind: Literal["diagonal", "scalar", "lbfgs"]
    rule: Callable | None = None
    refuse: Callable[[dict], tuple[str, str] | None] | None = None  # options -> (message, field)
    summary: Callable[[list[dict]], dict] | None = None

    @property
    def needs_state(self) -> bool:
        """Whether every parameter it covers needs a per-parameter entry in the optimizer state."""
        return self.kind == "diagonal"


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    factory: Callable[..., torch.optim.Optimizer] | None = None  # (params, **options); default: builds `cls`
    defaults: dict[str, Any] = field(default_factory=dict)
    second_order: bool = False  # uses the closure several times per step (line search)
    eval_switch: bool = False  # has .train()/.eval() weight modes (ScheduleFree)
    supports_schedule: bool = True
    cls: str | None = None  # "module:Class" it builds; that class named as module:Class shares `preconditioner`
    preconditioner: PreconditionerModel | None = None  # curvature's model of its P; None: curvature refuses
    lr_range: dict[str, tuple[float, float]] = field(default_factory=dict)  # suite -> measured (lr_steepest, lr_diverged)
    model_of: str | None = None  # registry entry whose preconditioner model a `module:Class` spec shares
    recipe: Recipe | None = None  # LR schedule, EMA and second stage the loop applies with it (MACE's)

    def __post_init__(self):
        if self.factory is None:
            if self.cls is None:
                raise ValueError(f"optimizer '{self.name}' needs a factory or a cls")
            object.__setattr__(self, "factory", _lazy_class(self.cls))

def _lazy_class(path: str) -> Callable[..., torch.optim.Optimizer]:
    module, cls = path.split(":", 1)

    def make(params, **kw):
        return getattr(importlib.import_module(module), cls)(params, **kw)

    return make


REGISTRY: dict[str, OptimizerSpec] = {}


def register_optimizer(spec: OptimizerSpec) -> None:
    """Add (or replace) an optimizer under `spec.name`."""
    REGISTRY[spec.name] = spec


def unregister_optimizer(name: str) -> None:
    """Remove the optimizer `name` (a test's toy entry, for instance)."""
    REGISTRY.pop(name, None)


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


def _entry_of_class(klass: type) -> OptimizerSpec | None:
    """The registry entry that builds `klass` (only entries whose module is imported can)."""
    for spec in REGISTRY.values():
        if spec.cls is None:
            continue
        module, cls = spec.cls.split(":", 1)
        if module in sys.modules and getattr(sys.modules[module], cls, None) is klass:
            return spec
    return None


def get_spec(name: str) -> OptimizerSpec:
    """The registry entry for `name`, or a spec for an importable `module:Class`."""
    key = name.lower()
    if key in REGISTRY:
        return REGISTRY[key]
    if ":" in name:
        import torch

        module, cls = name.split(":", 1)
        klass = _import_class(name, module, cls)
        if not (isinstance(klass, type) and issubclass(klass, torch.optim.Optimizer)):
            raise InputError(f"'{name}' is not a torch.optim.Optimizer subclass", field="optimizer")
        entry = _entry_of_class(klass)
        return OptimizerSpec(name, lambda params, **kw: klass(params, **kw), eval_switch=hasattr(klass, "eval"),
                             preconditioner=entry.preconditioner if entry else None,
                             model_of=entry.name if entry else None)
    known = ", ".join(sorted(REGISTRY))
    raise InputError(f"unknown optimizer '{name}' (known: {known}, or module:Class)", field="optimizer")


def preconditioner_spec(name: str) -> OptimizerSpec:
    """The spec of `name` with its preconditioner model (curvature's view of the optimizer), or
    NoPreconditionerModel naming the optimizers that have one."""
    spec = REGISTRY.get(name.lower())
    if spec is None and ":" in name:
        spec = get_spec(name)
    if spec is None or spec.preconditioner is None:
        known = ", ".join(n for n, s in REGISTRY.items() if s.preconditioner is not None)
        raise NoPreconditionerModel(f"no preconditioner model for optimizer '{name}' (known: {known}); "
                                    "an OptimizerSpec without `preconditioner` trains but cannot be analysed",
                                    field="optimizer")
    return spec


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


def group_lr(g: dict) -> float:
    """The group's current lr (as a scheduler left it); its initial_lr when a schedule ended at 0."""
    lr = float(g["lr"])
    return lr if lr > 0 or "initial_lr" not in g else float(g["initial_lr"])


def num(x) -> float:
    """A saved scalar (tensor or number) as a float."""
    return float(x.item() if hasattr(x, "item") else x)
