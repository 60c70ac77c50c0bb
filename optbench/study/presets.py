"""Built-in studies: `quick` (the demo, minutes on a laptop) and `paper` (the full comparison)."""

from __future__ import annotations

import copy

SEVEN = ("adam", "adamw", "radam", "sgd", "lamb", "ranger", "schedulefree")

_QUICK = {
    "name": "quick",
    "datasets": [{"name": "molecular", "suite": "molecular"}, {"name": "crystal", "suite": "crystal"}],
    "backbones": ["chgnet"],
    "optimizers": {name: {"lrs": [1e-3]} for name in SEVEN},
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
    "optimizers": {name: {"lrs": [3e-3, 1e-3, 3e-4, 1e-4]} for name in SEVEN},
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
