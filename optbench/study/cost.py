"""What a study's work costs, measured, and the wall-time estimate `optbench run --dry-run` builds from it.

MEASURED is the one table of measured costs: per backbone and built-in regime, seconds of one core (the
CPU time of a process with one torch thread), measured with `bench/study_costs.py` on the machine and
date in MACHINE. CPU time, not wall time: the machine was shared with other developers' jobs (load average
4-6 on 2 cores), which stretched the wall times 2-4x but not the work. An estimate from it is the wall
time on a machine where each worker has a core of its own; on a loaded machine the run takes longer.

Scaling, the model every estimate uses (`trial_seconds`, `analysis_seconds`):
- a trial: `trial_s` (model load and checks, optimizer set-up, E0 refit, the zero-shot, final and refined
  evaluations of every split; cold graph cache, so an upper bound after the first trial) + steps x
  `step_s` x batch_size / 4 + validations x `valid_s` + refine_steps x refine structures x `refine_s`;
  a wall-time budget (max_time_s) caps the training part;
- a curvature job: `curvature_s` + operators x (n_iter x n_slq + n_probes) x n_structures x `hvp_s`,
  operators: 1 at start (no optimizer state), 2 at mid/final (H and P^1/2 H P^1/2), 4 at refined (both,
  before and after the refinement);
- a property job: `properties[name]` seconds for one structure of the manifest (relaxation included;
  `md` and `interface`: per MD step, times the run's equilibration + production steps);
- a forgetting job: `forgetting_s` (probe set and the other regimes' test structures);
- a worker process: `WORKER_START_S` once (imports, first model load); the report: `REPORT_S`.
A regime or backbone without a measurement borrows the nearest one and the estimate says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MACHINE = ("2-core x86_64 development machine (shared), CPU only, torch 2.13.0+cpu, chgnet 0.4.2 (CHGNet 0.3.0 "
           "weights), one torch thread per process; measured 2026-11-26 with bench/study_costs.py")


@dataclass(frozen=True)
class RegimeCost:
    """Seconds of one core for the work of one regime with one backbone (see the module docstring)."""

    trial_s: float
    step_s: float  # one training step at batch size 4
    valid_s: float  # one pass over the validation split
    refine_s: float  # one L-BFGS step per structure of the refinement set
    hvp_s: float  # one Hessian-vector product per structure
    curvature_s: float  # a curvature job's fixed part (model load, featurization, figures)
    forgetting_s: float
    properties: dict[str, float] = field(default_factory=dict)  # per structure; md/interface per MD step


MEASURED: dict[tuple[str, str], RegimeCost] = {}  # filled below from bench/study_costs.py

WORKER_START_S = 12.0  # a process worker: Python, torch and chgnet imports, the first model load
REPORT_S = 60.0  # figures, tables and the HTML of a study of a few hundred trials


def regime_cost(backbone: str, regime: str) -> tuple[RegimeCost, str | None]:
    """The measured cost of (backbone, regime), or the nearest one with a note saying what was borrowed."""
    family = backbone.split(":")[0].split("@")[0]
    if (family, regime) in MEASURED:
        return MEASURED[family, regime], None
    same_regime = [k for k in MEASURED if k[1] == regime]
    key = same_regime[0] if same_regime else ("chgnet", "molecular")
    return MEASURED[key], f"no measured cost for {backbone} on {regime}: {key[0]}'s on {key[1]} used"


def hvps(checkpoint: str, n_iter: int, n_probes: int, n_slq: int) -> int:
    """Hessian-vector products of one curvature job (per structure of its loss)."""
    operators = {"start": 1, "mid": 2, "final": 2, "refined": 4}[checkpoint]
    return operators * (n_iter * n_slq + n_probes)


def trial_seconds(cost: RegimeCost, *, steps: int, batch_size: int, eval_every: int, max_time_s: float | None,
                  refine_steps: int, refine_structures: int) -> float:
    """One trial: fixed part, training (capped by a wall-time budget), validations, refinement."""
    train = steps * cost.step_s * batch_size / 4 + (steps // eval_every + 1) * cost.valid_s
    if max_time_s is not None:
        train = min(train, max_time_s + cost.step_s * batch_size / 4 + cost.valid_s)  # the step that crosses it
    return cost.trial_s + train + refine_steps * refine_structures * cost.refine_s
