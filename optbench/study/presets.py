"""Built-in studies: `quick` (the demo, minutes on a laptop) and `paper` (the full comparison).

Each optimizer is searched around its own useful LR range, measured with the LR range test
(`optbench.study.lr_range.lr_range_test`: CHGNet 0.3.0, one fixed batch of 4 training structures
of the built-in suite, LR swept from 1e-6 to 10 over 40 steps, seed 0; run 2026-11-25):
`RANGE_TESTS[opt][suite] = (lr_steepest, lr_diverged)`, the LR of steepest loss descent and the
LR where the smoothed loss passed 4x its minimum. The quick study's LR is the geometric mean of
the two steepest LRs (one significant digit); the paper grid is `lr_grid` around it (4 LRs,
sqrt(10) apart), kept below the lower divergence LR / 3.
"""

from __future__ import annotations

import copy
import math

SEVEN = ("adam", "adamw", "radam", "sgd", "lamb", "ranger", "schedulefree")

# Measured (lr_steepest, lr_diverged); smoothed loss of the batch (loss units) start -> minimum in the comment.
RANGE_TESTS = {
    "adam": {"molecular": (0.0011, 0.11), "crystal": (0.0017, 0.37)},  # 0.883 -> 0.324, 0.217 -> 0.060
    "adamw": {"molecular": (0.0011, 0.11), "crystal": (0.0017, 0.37)},  # 0.883 -> 0.324, 0.217 -> 0.060
    "radam": {"molecular": (0.013, 1.3), "crystal": (0.013, 4.4)},  # 0.883 -> 0.336, 0.217 -> 0.065
    "sgd": {"molecular": (0.0039, 0.031), "crystal": (0.0011, 0.046)},  # 0.883 -> 0.334, 0.217 -> 0.128
    "lamb": {"molecular": (0.0026, 0.11), "crystal": (0.0026, 0.046)},  # 0.883 -> 0.331, 0.217 -> 0.079
    "ranger": {"molecular": (0.0089, 0.11), "crystal": (0.031, 0.16)},  # 0.883 -> 0.382, 0.217 -> 0.073
    "schedulefree": {"molecular": (0.0017, 0.02), "crystal": (0.0026, 0.046)},  # 0.883 -> 0.112, 0.217 -> 0.022
}


def _measured(name: str) -> dict:
    """One range-test summary per optimizer: geometric-mean steepest LR, lowest divergence LR."""
    tests = RANGE_TESTS[name].values()
    steep = math.exp(sum(math.log(s) for s, _ in tests) / len(tests))
    return {"optimizer": name, "lr_steepest": steep, "lr_diverged": min(d for _, d in tests)}


def quick_lr(name: str) -> float:
    """The quick study's one LR: the measured steepest-descent LR, one significant digit."""
    from optbench.study.lr_range import lr_grid

    return lr_grid(_measured(name), 1)[0]


def paper_grid(name: str, n: int = 4) -> list[float]:
    """The paper study's grid: `n` LRs around the measured steepest-descent LR, below divergence."""
    from optbench.study.lr_range import lr_grid

    return lr_grid(_measured(name), n)


_QUICK = {
    "name": "quick",
    "datasets": [{"name": "molecular", "suite": "molecular"}, {"name": "crystal", "suite": "crystal"}],
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
    "datasets": [{"name": r, "suite": r} for r in ("molecular", "crystal", "liquid", "interface")],
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

PRESETS = {"quick": _QUICK, "paper": _PAPER}


def preset(name: str) -> dict:
    from optbench.errors import InputError

    if name not in PRESETS:
        raise InputError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})", field="preset")
    return copy.deepcopy(PRESETS[name])
