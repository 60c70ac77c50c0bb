"""What a study's work costs, measured, and the wall-time estimate `optbench run --dry-run` builds from it.

MEASURED is the one table of measured costs: per backbone and built-in regime, seconds of one core (the
CPU time of a process with one torch thread), measured with `bench/study_costs.py` on the machine and
date in MACHINE. CPU time, not wall time: the machine is shared with other developers' jobs, whose load
stretches wall times but not the work. An estimate from it is the wall time where each worker has a core
of its own; on a loaded machine the run takes longer. Checked on 16-trial studies (4 regimes x adamw, sgd
x 2 seeds, 2 process workers): with the paper-cpu settings, 24.8 min of CPU work and 13.8 min of wall time
estimated, 28.9 min of CPU work (half its trials with a cold cache, which a large study pays once) and
27.7 min of wall time measured at load average 2.6-3 (other jobs held about half the machine); an earlier
variant (5 Lanczos steps, curvature at final too), 21.3 min and 12.1 min estimated, 20.5 min and 13.9 min
measured at load average 2-3.

Scaling, the model every estimate uses (`trial_seconds`, `hvps`; `optbench.study.dryrun.make_plan`):
- a trial: `trial_s` (model load and checks, optimizer set-up, the final and refined evaluations of every
  split; the graphs and the E0 and zero-shot predictions come from the study's cache after the first
  trial) + steps x `step_s` x batch_size / 4 + validations x `valid_s` + refine_steps x refine structures
  x `refine_s`; a wall-time budget (max_time_s) caps the training part;
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


# bench/study_costs.py, its defaults: a trial of 40 steps (validation every 10), 3 L-BFGS steps on 8 structures;
# curvature n_structures 2, k 2, n_iter 6, 1 probe, 1 SLQ vector; MD 100 + 200 steps. Trials: `--trial-only`,
# the second trial of each regime (graphs and zero-shot predictions cached, as for every later trial of a study),
# phases in CPU seconds, load average 0.7-2.0; analyses: CPU seconds at load average 2-7. A trial's `step_s`
# holds the loss, its gradient and the optimizer step; `valid_s` and the fixed part follow from the cost of one
# prediction in the evaluate phase (its final and refined evaluations of every split). Re-checked after the
# evaluation and curvature speed-ups (speed17b) were merged, load average 1.2-2.3: warm molecular and crystal
# trials 12.4 and 11.1 s (14.1 and 13.4 here), the liquid start curvature 21.3 s (27.9 here, at load 4.8): this
# table is 10-25% high for that code, about what the 16-trial check needed beyond its estimate.
MEASURED: dict[tuple[str, str], RegimeCost] = {
    # molecular: 36 training molecules of 9-12 atoms, 120 evaluated; warm trial 14.1 s (evaluate 3.3, train 8.7,
    # refine 1.8); vibrations of ethanol, malonaldehyde, butane 1.9, 1.8, 4.2 s; curvature start/final/refined
    # 2.8/5.9/10.1 s
    ("chgnet", "molecular"): RegimeCost(trial_s=3.5, step_s=0.2, valid_s=0.12, refine_s=0.075, hvp_s=0.17,
                                        curvature_s=0.5, forgetting_s=10.5, properties={"vibrations": 2.6}),
    # crystal: 20 training cells of 8 atoms (Si, NaCl, Al), 100 evaluated; warm trial 13.4 s (evaluate 1.5, train
    # 9.4, refine 2.3); elastic 1.6/0.9 s, EOS 0.3 s, phonons 0.6-0.9 s; curvature 2.4/5.2/10.6 s
    ("chgnet", "crystal"): RegimeCost(trial_s=1.6, step_s=0.23, valid_s=0.08, refine_s=0.096, hvp_s=0.19,
                                      curvature_s=0.3, forgetting_s=10.6,
                                      properties={"elastic": 1.25, "eos": 0.3, "phonons": 0.7}),
    # liquid: 30 training boxes of 16 waters (48 atoms), 80 evaluated; warm trial 205.7 s (evaluate 40.1, train
    # 132.9, refine 32.0); MD 81.4 s for 300 steps; curvature 27.9/57.5/101.8 s
    ("chgnet", "liquid"): RegimeCost(trial_s=40.6, step_s=3.1, valid_s=2.0, refine_s=1.33, hvp_s=1.76,
                                     curvature_s=3.0, forgetting_s=3.8, properties={"md": 0.27}),
    # interface: 30 training water films, 65 evaluated; warm trial 178.4 s (evaluate 28.6, train 118.5, refine
    # 30.8); slab MD 71.1 s for 300 steps; curvature 24.2/46.4/91.6 s
    ("chgnet", "interface"): RegimeCost(trial_s=28.8, step_s=2.8, valid_s=1.76, refine_s=1.28, hvp_s=1.6,
                                        curvature_s=2.0, forgetting_s=7.2, properties={"interface": 0.24}),
}


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
