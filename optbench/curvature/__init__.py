"""Curvature and preconditioning: the Hessian of the fine-tuning loss as each optimizer sees it.

Pieces: `build_hvp_operator` (H v or Gauss-Newton G v of the exact loss), `lanczos`,
`hutchinson_trace`, `slq_density`, `preconditioner_from_state` (P and P^1/2 of each optimizer),
`analyse` (everything at one set of weights) and `run_curvature` (the CLI's RUN_DIR entry point).
"""

from optbench.curvature import plots
from optbench.curvature.analysis import analyse, condition_numbers, preconditioned, spectral_filter
from optbench.curvature.hvp import HessianOperator, ParamSpace, build_hvp_operator
from optbench.curvature.linalg import LanczosResult, hutchinson_trace, lanczos, slq_density
from optbench.curvature.precond import (
    DiagonalPreconditioner,
    LBFGSPreconditioner,
    Preconditioner,
    preconditioner_from_state,
)


def run_curvature(**kwargs):
    """See optbench.curvature.run.run_curvature."""
    from optbench.curvature.run import run_curvature as _run

    return _run(**kwargs)


__all__ = [
    "DiagonalPreconditioner", "HessianOperator", "LBFGSPreconditioner", "LanczosResult", "ParamSpace",
    "Preconditioner", "analyse", "build_hvp_operator", "condition_numbers", "hutchinson_trace", "lanczos",
    "plots", "preconditioned", "preconditioner_from_state", "run_curvature", "slq_density", "spectral_filter",
]
