"""Built-in studies: `quick` (the demo, minutes on a laptop), `paper-cpu` (the paper's comparison at the size
the 2-core development machine affords in under 2 hours), `paper` (the full size, for a GPU or a Ray cluster)
and `strategies` (fine-tuning strategies crossed with optimizers, judged on accuracy and forgetting).

Each optimizer is searched around its own useful LR range, measured with the LR range test and
kept with its registry entry (`OptimizerSpec.lr_range`, see optbench.optim.builtin):
`RANGE_TESTS[opt][suite] = (lr_steepest, lr_diverged)`, the LR of steepest loss descent and the
LR where the smoothed loss passed 4x its minimum. The quick study's LR is the geometric mean of
the steepest LRs of its two regimes (one significant digit); the paper grids are `lr_grid` around the
geometric mean over the four regimes (LRs sqrt(10) apart), kept below the lowest divergence LR / 3.

`paper-cpu`, sized with the measured costs of optbench.study.cost (their one home; `optbench run --preset
paper-cpu --dry-run --executor process --workers 2` prints the estimate from them) to finish well within
2 hours with `--executor process --workers 2` where the two workers have the two cores to themselves
(measured: 67.6 min, the published run in results/paper-cpu). Other jobs on the machine stretch it in
proportion:
- the four built-in regimes x CHGNet x the seven optimizers x 2 LRs each (`paper_grid(name, 2)`: the
  steepest-descent LR and one sqrt(10) below; every chosen LR therefore sits at an edge of its grid,
  and which edge says where a better one may lie) x 3 seeds = 168 trials;
- each trial: batch 4, a wall-time budget of 15 s of training (max_time_s; at most 100 steps),
  validation every 10 steps, then 2 L-BFGS steps on 4 training structures. The budget is wall time:
  a regime's step cost decides how many steps fit (about 70, 60, 5 and 5 on molecular, crystal, liquid
  and interface in the published run; fewer under load; results.csv has the steps each trial ran). The
  water regimes' trials are dominated by evaluating their 48-atom boxes, which no budget setting removes;
- properties of each selected trial before and after the refinement (`properties: [final, refined]`) for
  molecular (vibrations) and crystal (EOS, elastic, phonons). The liquid and interface MD observables are
  left out: even a 300-step CHGNet run on the 16-water box, which resolves none of them, costs over a
  minute of one core a model, for the 84 models before and after refinement;
- curvature of the first seed's trials at start and refined (the refined analysis holds the final one,
  before the refinement): 1 structure, k = 2, 12 Lanczos steps (where lambda_1/lambda_2 of P^1/2 H P^1/2
  converged on the trials tried; 5 did not), 1 Hutchinson probe, 1 SLQ vector;
- forgetting of every selected trial (probe set and the other regimes' test structures).
"""

from __future__ import annotations

import copy
import math

from optbench.optim import FIRST_ORDER, REGISTRY
from optbench.regimes import BUILTIN_REGIMES

SEVEN = FIRST_ORDER  # the compared optimizers: the built-in entries with a measured LR range

RANGE_TESTS = {name: dict(REGISTRY[name].lr_range) for name in SEVEN}
QUICK_REGIMES = ("molecular", "crystal")


def _measured(name: str, regimes=None) -> dict:
    """One range-test summary per optimizer over `regimes` (default: every regime measured):
    geometric-mean steepest LR, lowest divergence LR."""
    tests = [v for k, v in RANGE_TESTS[name].items() if regimes is None or k in regimes]
    steep = math.exp(sum(math.log(s) for s, _ in tests) / len(tests))
    return {"optimizer": name, "lr_steepest": steep, "lr_diverged": min(d for _, d in tests)}


def quick_lr(name: str) -> float:
    """The quick study's one LR: the steepest-descent LR measured on its regimes, one significant digit."""
    from optbench.study.lr_range import lr_grid

    return lr_grid(_measured(name, QUICK_REGIMES), 1)[0]


def paper_grid(name: str, n: int = 4, regimes=None) -> list[float]:
    """The paper studies' grid: `n` LRs around the measured steepest-descent LR, below divergence."""
    from optbench.study.lr_range import lr_grid

    return lr_grid(_measured(name, regimes), n)


_QUICK = {
    "name": "quick",
    "datasets": [{"name": r, "suite": r} for r in QUICK_REGIMES],
    "backbones": ["chgnet"],
    "optimizers": {name: {"lrs": [quick_lr(name)]} for name in SEVEN},
    "seeds": [0],
    "max_steps": 60,
    "batch_size": 4,
    "eval_every": 10,
    "refine": True,
    "refine_steps": 5,
    "properties": True,
    "curvature": {"checkpoints": ["final"], "n_structures": 4, "k": 3, "n_iter": 8, "n_probes": 2, "n_slq": 1},
    "forgetting": True,
    # the L-BFGS stage on 12 training structures (all 36 / 20 before): the demo with 2 process workers on the
    # quiet 2-core machine, 2026-11-26: 4 min 20 s before, 3 min 40 s after (trials 157 -> 120 s)
    "finetune": {"refine_structures": 12},
}

_PAPER = {
    "name": "paper",
    "datasets": [{"name": r, "suite": r} for r in BUILTIN_REGIMES],
    "backbones": ["chgnet"],
    "optimizers": {name: {"lrs": paper_grid(name)} for name in SEVEN},
    "seeds": [0, 1, 2],
    "max_steps": 1000,
    "batch_size": 4,
    "eval_every": 25,
    "refine": True,
    "refine_steps": 30,
    "properties": True,
    "curvature": {"checkpoints": ["start", "final", "refined"], "n_structures": 32, "k": 10},
    "forgetting": True,
}

# Strategies crossed with optimizers at about the quick study's budget: CHGNet on the molecular and
# crystal suites, 3 strategies (every parameter; the embedding frozen; a quarter of each batch replayed
# from pseudo-labels of the pretrained model) x 3 optimizers (adamw, schedulefree, and the MACE recipe
# at adam's quick LR) x 2 seeds (the report's intervals need two), one LR each: 2 x 3 x 3 x 2 = 36
# trials of 40 steps, no L-BFGS stage, no properties, no curvature, forgetting on the probe set (the
# report's accuracy-forgetting axis). Sized for <= 20 min with `--executor process --workers 2` on the
# 2-core machine: a 60-step adamw trial (both suites side by side, load average 6) took 74 s, of which
# 20-28 s read, setup and evaluation, so 40 steps is about 57 s and 36 trials about 17 min there, plus
# about 2 min of forgetting. Timed whole on 2026-11-26: 10 min 26 s with 2 process workers beside two
# other developers' jobs.
_STRATEGIES = {
    "name": "strategies",
    "datasets": [{"name": "molecular", "suite": "molecular"}, {"name": "crystal", "suite": "crystal"}],
    "backbones": ["chgnet"],
    "optimizers": {"adamw": {"lrs": [quick_lr("adamw")]}, "schedulefree": {"lrs": [quick_lr("schedulefree")]},
                   "mace_recipe": {"lrs": [quick_lr("adam")]}},
    "strategies": ["full", "freeze:embedding", "replay:0.25"],
    "seeds": [0, 1],
    "max_steps": 40,
    "batch_size": 4,
    "eval_every": 10,
    "refine": False,
    "properties": False,
    "curvature": None,
    "forgetting": True,
}


_WATER = {"properties": []}  # MD observables: see the paper-cpu docstring
_PAPER_CPU = {
    "name": "paper-cpu",
    "datasets": [{"name": r, "suite": r, **(_WATER if r in ("liquid", "interface") else {})} for r in BUILTIN_REGIMES],
    "backbones": ["chgnet"],
    "optimizers": {name: {"lrs": paper_grid(name, 2)} for name in SEVEN},
    "seeds": [0, 1, 2],
    "max_steps": 100,
    "max_time_s": 15,
    "batch_size": 4,
    "eval_every": 10,
    "refine": True,
    "refine_steps": 2,
    "finetune": {"refine_structures": 4},
    "properties": ["final", "refined"],
    # the refined analysis holds the final one (before_refinement): start, final and refined in two jobs
    "curvature": {"checkpoints": ["start", "refined"], "n_structures": 1, "k": 2, "n_iter": 12, "n_probes": 1,
                  "n_slq": 1},
    "forgetting": True,
}

PRESETS = {"quick": _QUICK, "paper-cpu": _PAPER_CPU, "paper": _PAPER, "strategies": _STRATEGIES}


def preset(name: str) -> dict:
    from optbench.errors import InputError

    if name not in PRESETS:
        raise InputError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})", field="preset")
    return copy.deepcopy(PRESETS[name])
