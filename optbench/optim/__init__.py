"""Optimizers by name: one `OptimizerSpec` per optimizer (see `optbench.optim.builtin` for the
built-in ones and `optbench.optim.spec` for what a spec carries); any torch optimizer as `module:Class`.

Quirks kept with their entries: ScheduleFree's train/eval switch (evaluation and saving use its
eval weights), L-BFGS's closure and line search, Ranger's Lookahead (inside pytorch-optimizer),
its warm-up steps and its gradient centralisation (off), and each optimizer's preconditioner model.
"""

from optbench.optim.builtin import FIRST_ORDER
from optbench.optim.spec import (
    REGISTRY,
    NoPreconditionerModel,
    OptimizerSpec,
    PreconditionerModel,
    build_optimizer,
    get_spec,
    preconditioner_spec,
    register_optimizer,
    set_mode,
    unregister_optimizer,
)

__all__ = [
    "FIRST_ORDER", "REGISTRY", "NoPreconditionerModel", "OptimizerSpec", "PreconditionerModel", "build_optimizer",
    "get_spec", "preconditioner_spec", "register_optimizer", "set_mode", "unregister_optimizer",
]
