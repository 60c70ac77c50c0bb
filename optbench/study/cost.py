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

Scaling, the model every estimate uses (`trial_seconds`, `hvps`, `curvature_seconds`, `forgetting_seconds`;
`optbench.study.dryrun.make_plan`):
- a trial: `trial_s` (model load and checks, optimizer set-up, the final and refined evaluations of every
  split; the graphs and the E0 and zero-shot predictions come from the study's cache after the first
  trial) + steps x `step_s` x batch_size / 4 + validations x `valid_s` + refine_steps x refine structures
  x `refine_s`; a wall-time budget (max_time_s) caps the training part;
- a curvature job: `curvature_s` + products x (`hvp_fixed_s` + n_structures x `hvp_s`), products =
  operators x (n_iter x n_slq + n_probes), operators: 1 at start (no optimizer state), 2 at mid/final (H and
  P^1/2 H P^1/2), 4 at refined (both, before and after the refinement). A product has a part that does not
  grow with the structures (the parameter-sized vectors, Lanczos' orthogonalisation, the autograd graph's
  fixed ops): in a curvature job on the molecular suite 0.12 s a product plus 0.045 s a structure
  (`hvp_fixed_s` was missing before 2026-11-26, when `hvp_s` held it: the quick study's 4-structure
  curvature was estimated at 14.8 s a job, measured 6.0 s);
- a property job: `properties[name]` seconds for one structure of the manifest (relaxation included;
  `md` and `interface`: per MD step, times the run's equilibration + production steps);
- a forgetting job: `forgetting_s` (the model's load and the built-in probe set) + `eval_s` of each other
  dataset's regime x its structures in the measure (`optbench.forgetting.frames_outside`: the first
  `PER_TEST_FILE` of each of its test files); a worker's first job of a dataset pays the pretrained
  model's predictions on the same structures once more;
- a worker process: `WORKER_START_S` once (a fork of the server that imported torch, optbench and CHGNet,
  whose own start runs beside the study's checks); the report: `REPORT_S` + `REPORT_S_PER_TRIAL` a trial.
A regime or backbone without a measurement borrows the nearest one and the estimate says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optbench.forgetting import PER_TEST_FILE

MACHINE = ("2-core x86_64 development machine (shared), CPU only, torch 2.13.0+cpu, chgnet 0.4.2 (CHGNet 0.3.0 "
           "weights), one torch thread per process; measured 2026-11-26 with bench/study_costs.py")


@dataclass(frozen=True)
class RegimeCost:
    """Seconds of one core for the work of one regime with one backbone (see the module docstring)."""

    trial_s: float
    step_s: float  # one training step at batch size 4
    valid_s: float  # one pass over the validation split
    refine_s: float  # one L-BFGS step per structure of the refinement set
    hvp_s: float  # one Hessian-vector product, per structure of its loss
    curvature_s: float  # a curvature job's fixed part (model load, featurization, figures)
    forgetting_s: float  # a forgetting job's fixed part: the model's load, the built-in probe set
    hvp_fixed_s: float = 0.12  # one Hessian-vector product, the part that does not grow with the structures
    eval_s: float = 0.0  # one structure of this regime predicted (energy, forces) by a forgetting measure
    properties: dict[str, float] = field(default_factory=dict)  # per structure; md/interface per MD step


# bench/study_costs.py, its defaults: a trial of 40 steps (validation every 10), 3 L-BFGS steps on 8 structures;
# curvature n_structures 2, k 2, n_iter 6, 1 probe, 1 SLQ vector; MD 100 + 200 steps. A trial's `step_s` holds
# the loss, its gradient and the optimizer step; `valid_s` and the fixed part follow from the cost of one
# prediction in the evaluate phase (its final and refined evaluations of every split). Molecular and crystal
# re-measured on 2026-11-26 on the quiet machine (load average 1.0-1.3, the code of the fork-server workers):
# steps, refinement and curvature products 20-35% cheaper than in the first measurement (load average 2-7),
# and the products split into a part per product and a part per structure (`hvp_fixed_s`, `hvp_s`; the study's
# seconds_per_hvp at 2 structures 0.21-0.25 s; one product of the bare operator 0.073 s at 1 structure, 0.686 s
# at 16); forgetting split into its fixed part and the other regimes' structures (`forgetting_s`, `eval_s`:
# the probe set alone 0.4 s; 12 test frames of liquid water 2.1 s, of the water film 1.7 s, of crystals 0.1 s;
# `eval_s` fitted to the four forgetting jobs below, each within 10%). Liquid and interface re-measured the same
# day, twice (trial, curvature and MD 25-40% cheaper than in the first measurement).
MEASURED: dict[tuple[str, str], RegimeCost] = {
    # molecular: 36 training molecules of 9-12 atoms, 120 evaluated; trial 12.9 s (evaluate 3.5, train 6.7,
    # refine 1.2); vibrations of ethanol, malonaldehyde, butane 1.4, 1.2, 3.2 s; curvature start/final/refined
    # 2.2/4.3/7.9 s; forgetting with the three other regimes' test structures 8.4 s (first in a process 18.9 s)
    ("chgnet", "molecular"): RegimeCost(trial_s=3.5, step_s=0.15, valid_s=0.12, refine_s=0.05, hvp_s=0.045,
                                        hvp_fixed_s=0.12, curvature_s=0.6, forgetting_s=0.5, eval_s=0.012,
                                        properties={"vibrations": 1.9}),
    # crystal: 20 training cells of 8 atoms (Si, NaCl, Al), 100 evaluated; trial 11.1 s (evaluate 1.2, train
    # 7.8, refine 1.6); elastic 1.0/0.6 s, EOS 0.2 s, phonons 0.5 s; curvature 2.1/4.1/7.4 s; forgetting 8.2 s
    ("chgnet", "crystal"): RegimeCost(trial_s=1.6, step_s=0.185, valid_s=0.08, refine_s=0.067, hvp_s=0.056,
                                      hvp_fixed_s=0.10, curvature_s=0.6, forgetting_s=0.5, eval_s=0.009,
                                      properties={"elastic": 0.8, "eos": 0.2, "phonons": 0.5}),
    # liquid: 30 training boxes of 16 waters (48 atoms), 80 evaluated; trial 180.0 s on a cold cache (evaluate 52.4
    # with the E0 pass and zero-shot predictions), 151.2 s warm (evaluate 31.0, train 94.1, refine 24.7);
    # curvature 16.3-18.7/31.7-35.1/63.6-69.9 s; forgetting 3.0-3.3 s; MD 55.0 s for 300 steps
    ("chgnet", "liquid"): RegimeCost(trial_s=32.3, step_s=2.3, valid_s=1.5, refine_s=1.05, hvp_s=1.16,
                                     hvp_fixed_s=0.12, curvature_s=1.6, forgetting_s=0.5, eval_s=0.2,
                                     properties={"md": 0.18}),
    # interface: 30 training water films, 65 evaluated; trial 143.1 s cold (evaluate 34.3), 118.5 s warm (evaluate
    # 18.4, train 82.8, refine 17.1); curvature 14.1-15.2/27.9-29.3/60.7 s; forgetting 5.4 s; slab MD 46.4 s for
    # 300 steps
    ("chgnet", "interface"): RegimeCost(trial_s=18.6, step_s=2.07, valid_s=1.3, refine_s=0.74, hvp_s=1.02,
                                        hvp_fixed_s=0.12, curvature_s=0.5, forgetting_s=0.5, eval_s=0.14,
                                        properties={"interface": 0.155}),
}


WORKER_START_S = 1.5  # a process worker, forked from the preloaded server (bench/worker_start.py: 0.07 s; 1.4 s spawned)
REPORT_S = 4.5  # figures, tables and the HTML of a study: the quick study's 14 trials 5.2 s, paper-cpu's 168 8 s
REPORT_S_PER_TRIAL = 0.02


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


def curvature_seconds(cost: RegimeCost, checkpoint: str, *, n_structures: int, n_iter: int, n_probes: int,
                      n_slq: int) -> float:
    """One curvature job at `checkpoint`."""
    return cost.curvature_s + hvps(checkpoint, n_iter, n_probes, n_slq) * (cost.hvp_fixed_s + n_structures * cost.hvp_s)


def forgetting_seconds(cost: RegimeCost, others: list[tuple[RegimeCost, int]]) -> float:
    """One forgetting job: its fixed part and the structures of the other datasets, (their regime's cost,
    their test files) each."""
    return cost.forgetting_s + sum(other.eval_s * n_files * PER_TEST_FILE for other, n_files in others)


def trial_seconds(cost: RegimeCost, *, steps: int, batch_size: int, eval_every: int, max_time_s: float | None,
                  refine_steps: int, refine_structures: int) -> float:
    """One trial: fixed part, training (capped by a wall-time budget), validations, refinement."""
    train = steps * cost.step_s * batch_size / 4 + (steps // eval_every + 1) * cost.valid_s
    if max_time_s is not None:
        train = min(train, max_time_s + cost.step_s * batch_size / 4 + cost.valid_s)  # the step that crosses it
    return cost.trial_s + train + refine_steps * refine_structures * cost.refine_s
