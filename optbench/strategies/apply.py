"""The strategy on a backbone: what is frozen, what is adapted, and the optimizer's parameter groups.

`prepare(backbone, config)` is the one hook the run (and `optbench curvature`, which rebuilds a run's
model) calls: it applies the strategy to the model once (frozen groups get requires_grad=False, LoRA
adds its adapters) and returns the torch param groups to build the optimizer with, lr = base lr x the
group's factor. The flat order of those groups (`flat_parameters`) is the optimizer's state index.
"""

from __future__ import annotations

import importlib

from optbench.errors import InputError
from optbench.strategies.groups import check_groups
from optbench.strategies.spec import Strategy

_APPLIED = "_optbench_strategy"  # attribute of the backbone: the strategy already applied to its model
_LORA = "_optbench_lora"  # attribute of the backbone: the record of the LoRA adapters it was given


def check_strategy(backbone, strategy: str | Strategy, lr_factors: dict[str, float] | None = None,
                   optimizer: str | None = None) -> Strategy:
    """Everything `prepare` refuses, without touching the model: unknown groups (named with the backbone's
    groups), a strategy that leaves nothing to train, a factor for a group with nothing to train, LoRA or
    replay not available, per-group factors for L-BFGS (one parameter group only)."""
    strategy = Strategy.parse(strategy)
    groups = backbone.parameter_groups()
    check_groups(backbone, strategy.freeze, "strategy", f" for strategy '{strategy}'")
    frozen = {n for g in strategy.freeze for n in groups[g]}
    trainable = {n for n, p in backbone.model.named_parameters() if p.requires_grad and n not in frozen}
    if frozen and not trainable:
        raise InputError(f"strategy '{strategy}' freezes every trainable parameter of backbone '{backbone.name}'",
                         field="strategy")
    for part, wanted in (("lora", strategy.lora_rank), ("replay", strategy.replay_fraction)):
        if wanted is not None:
            _part(part, strategy, backbone)
    if lr_factors:
        check_groups(backbone, lr_factors, "lr_factors")
        idle = [g for g in lr_factors if not set(groups[g]) & trainable]
        if idle and strategy.lora_rank is None:  # LoRA trains its adapters, wherever they sit
            raise InputError(f"parameter group(s) {', '.join(idle)} of backbone '{backbone.name}' have nothing to "
                             f"train under strategy '{strategy}'; drop their LR factors", field="lr_factors")
        if optimizer is not None and _single_group(optimizer):
            raise InputError(f"optimizer '{optimizer}' (torch.optim.LBFGS) takes a single parameter group: "
                             "per-group LR factors cannot apply; drop lr_factors", field="lr_factors")
    return strategy


def _single_group(optimizer: str) -> bool:
    from optbench.optim import get_spec

    spec = get_spec(optimizer)
    return "lbfgs" in (spec.name, spec.model_of)


def _part(name: str, strategy: Strategy, backbone):
    """The module optbench.strategies.NAME (LoRA, replay), or InputError when it is not there."""
    try:
        return importlib.import_module(f"optbench.strategies.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"optbench.strategies.{name}":
            raise
        raise InputError(f"{name} is not available yet (strategy '{strategy}', backbone '{backbone.name}')",
                         field="strategy") from None


def apply_strategy(backbone, strategy: str | Strategy, seed: int = 0) -> dict | None:
    """Freeze the strategy's groups (requires_grad=False) and add LoRA adapters (initialised from
    `seed`), once per model (`check_strategy` first); calling it again with the same strategy does
    nothing. Returns the LoRA record for results.json (`lora_applied`), None without LoRA."""
    strategy = Strategy.parse(strategy)
    done = getattr(backbone, _APPLIED, None)
    if done is not None:
        if done != str(strategy):
            raise InputError(f"backbone already prepared for strategy '{done}', not '{strategy}'", field="strategy")
        return lora_applied(backbone)
    check_strategy(backbone, strategy)
    frozen = {n for g in strategy.freeze for n in backbone.parameter_groups()[g]}
    for n, p in backbone.model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    record = None
    if strategy.lora_rank is not None:
        record = _part("lora", strategy, backbone).apply_lora(backbone, strategy.lora_rank, seed=seed)
    setattr(backbone, _LORA, record)
    setattr(backbone, _APPLIED, str(strategy))
    return record


def lora_applied(backbone) -> dict | None:
    """The record of the LoRA adapters `apply_strategy` gave this backbone (None: none)."""
    return getattr(backbone, _LORA, None)


def named_groups(backbone, lr_factors: dict[str, float] | None = None) -> list[tuple[str, float, list]]:
    """(group, LR factor, [(name, parameter)]) of the trainable parameters, in optimizer order.

    Without factors: one group 'all' in the model's order (a full run's optimizer, unchanged);
    with factors: one group per parameter group that has trainable parameters, factor 1 unless given.
    """
    trainable = dict(backbone.named_parameters())
    if not lr_factors:
        return [("all", 1.0, list(trainable.items()))]
    out = []
    for group, names in backbone.parameter_groups().items():
        members = [(n, trainable[n]) for n in names if n in trainable]
        if members:
            out.append((group, float(lr_factors.get(group, 1.0)), members))
    return out


def param_groups(backbone, lr: float, lr_factors: dict[str, float] | None = None) -> list[dict]:
    """torch param groups of the trainable parameters: lr = `lr` x factor; with factors each group
    also carries its 'group' name and 'lr_factor'."""
    groups = named_groups(backbone, lr_factors)
    if not lr_factors:
        return [{"params": [p for _, p in groups[0][2]]}]
    return [{"params": [p for _, p in members], "lr": lr * factor, "group": name, "lr_factor": factor}
            for name, factor, members in groups]


def flat_parameters(groups: list[dict]) -> list:
    """The parameters of torch param groups in optimizer order (state index i == list index i)."""
    return [p for g in groups for p in g["params"]]


def prepare(backbone, config) -> list[dict]:
    """Apply `config.strategy` to the backbone (once; everything checked first) and return the
    optimizer's param groups for `config.lr` and `config.lr_factors`."""
    if getattr(backbone, _APPLIED, None) is None:
        check_strategy(backbone, config.strategy, config.lr_factors, config.optimizer)
    apply_strategy(backbone, config.strategy, seed=config.seed)
    return param_groups(backbone, config.lr, config.lr_factors)
