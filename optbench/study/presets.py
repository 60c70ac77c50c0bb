"""Built-in studies: `quick` (the demo, minutes on a laptop), `paper` (the full comparison) and
`strategies` (fine-tuning strategies crossed with optimizers, judged on accuracy and forgetting).

Each optimizer is searched around its own useful LR range, measured with the LR range test and
kept with its registry entry (`OptimizerSpec.lr_range`, see optbench.optim.builtin):
`RANGE_TESTS[opt][suite] = (lr_steepest, lr_diverged)`, the LR of steepest loss descent and the
LR where the smoothed loss passed 4x its minimum. The quick study's LR is the geometric mean of
the two steepest LRs (one significant digit); the paper grid is `lr_grid` around it (4 LRs,
sqrt(10) apart), kept below the lower divergence LR / 3.
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
# about 2 min of forgetting; not yet timed whole. Validates once the study's `strategies` field and the
# `mace_recipe` optimizer are on main.
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

PRESETS = {"quick": _QUICK, "paper": _PAPER, "strategies": _STRATEGIES}


def preset(name: str) -> dict:
    from optbench.errors import InputError

    if name not in PRESETS:
        raise InputError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})", field="preset")
    return copy.deepcopy(PRESETS[name])
