"""A backbone's parameter groups as the user sees them: the table of `optbench finetune --list-groups`
and the check that names a backbone's groups when a strategy or an LR factor asks for another."""

from __future__ import annotations

from optbench.errors import InputError


def group_table(backbone) -> list[dict]:
    """One row per parameter group: name, tensors, parameters (all and trainable)."""
    params = dict(backbone.model.named_parameters())
    rows = []
    for group, names in backbone.parameter_groups().items():
        tensors = [params[n] for n in names]
        rows.append({"group": group, "tensors": len(tensors), "parameters": sum(p.numel() for p in tensors),
                     "trainable": sum(p.numel() for p in tensors if p.requires_grad)})
    return rows


def format_groups(backbone) -> str:
    """The table of `group_table`, one line a group."""
    rows = group_table(backbone)
    lines = [f"parameter groups of backbone '{backbone.name}' (freeze:GROUP, lr_factors GROUP=FACTOR)",
             f"{'group':<14}{'tensors':>9}{'parameters':>13}{'trainable':>12}"]
    lines += [f"{r['group']:<14}{r['tensors']:>9}{r['parameters']:>13}{r['trainable']:>12}" for r in rows]
    return "\n".join(lines)


def list_groups(model: str, device: str = "cpu", strategy: str | None = None) -> str:
    """The group table of backbone `model` (a spec or RUN_DIR), trainable counts after `strategy`."""
    from optbench.backbones import load_backbone
    from optbench.strategies.apply import apply_strategy

    backbone = load_backbone(model, device)
    if strategy is not None:
        apply_strategy(backbone, strategy)
    return format_groups(backbone)


def check_groups(backbone, names, field: str, what: str = "") -> None:
    """InputError naming the backbone, `what` asked for it and its groups when a name is not one of them."""
    known = list(backbone.parameter_groups())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"backbone '{backbone.name}' has no parameter group {', '.join(map(repr, unknown))}"
                         f"{what} (its groups: {', '.join(known)})", field=field)
