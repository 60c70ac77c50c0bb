"""`lora:RANK`: low-rank adapters (LoRA, Hu et al. 2021) on a backbone's linear layers, merged at the end.

Which layers:
- every plain `torch.nn.Linear` of the model (CHGNet: 50 layers, 97% of its weights), except the
  backbone's reference-energy modules (`Backbone.reference_modules`: the per-element E0 table, which
  the E0 setting writes in place and which stays frozen);
- MACE models get MACE's own LoRA (`mace.modules.lora`, what `mace_run_train --lora` does), which
  also adapts the equivariant `o3.Linear` layers and the radial MLPs (e3nn layers);
- a backbone with neither (SevenNet: e3nn layers only) raises InputError naming the backbone and
  the strategy.

How, on a plain Linear: a `torch.nn.utils.parametrize` parametrization of its weight,
W -> W + (alpha/r) B A, so the layer stays an `nn.Linear` whose `.weight` is the adapted weight and
every code path that reads it (CHGNet's forward, optbench's faster CHGNet path) sees the adapter.
A (r x in) starts Kaiming-uniform from a generator seeded by the run's seed, B (out x r) at zero:
the adapted model starts identical to the pretrained one. Every base parameter is frozen; the
trainable parameters (what the optimizer, the EMA, checkpoints and curvature see) are the A and B.

`merge_lora` folds the adapters into the weights (the very W + (alpha/r) B A the forward computes)
and leaves a plain model with every parameter trainable again, as `load_backbone` gives it: the
backbone's native file and the ASE calculator need nothing of LoRA. A checkpoint of a LoRA run holds
the adapter model's state: it loads into `apply_lora(load_backbone(model), rank)` (any seed).
"""

from __future__ import annotations

import math
import sys

import torch
from torch import nn
from torch.nn.utils import parametrize

from optbench.errors import InputError


class LowRankUpdate(nn.Module):
    """The parametrization W (out x in) -> W + scale * B @ A, scale = alpha / rank."""

    def __init__(self, weight: torch.Tensor, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        out_features, in_features = weight.shape
        a = torch.empty(rank, in_features, dtype=weight.dtype)
        nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)  # torch.nn.Linear's (and peft's) init
        self.lora_A = nn.Parameter(a.to(weight.device))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.lora_B @ self.lora_A)


def _excluded(backbone, name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in getattr(backbone, "reference_modules", ()))


def plain_linear_layers(backbone) -> list[tuple[str, nn.Linear]]:
    """(name, layer) of every plain Linear of the model outside its reference-energy modules."""
    return [(n, m) for n, m in backbone.model.named_modules() if isinstance(m, nn.Linear) and not _excluded(backbone, n)]


def _layer_kinds(model: nn.Module) -> str:
    """The module types that hold the model's weights, for an error message."""
    kinds = {type(m).__module__.split(".")[0] + "." + type(m).__name__ for m in model.modules()
             if any(True for _ in m.parameters(recurse=False))}
    return ", ".join(sorted(kinds))


def apply_lora(backbone, rank: int, alpha: float | None = None, seed: int = 0) -> dict:
    """Add rank-`rank` adapters to the backbone's linear layers and freeze everything else.

    `alpha` (default: `rank`, so the update is B A itself) sets the scale alpha/rank of the update.
    Returns the record for results.json (`lora_record`); InputError (field 'strategy') when the
    backbone has no layer this strategy can adapt.
    """
    if has_lora(backbone):
        raise ValueError("this backbone already has adapters")
    alpha = float(rank if alpha is None else alpha)
    mace = getattr(backbone, "name", "") == "mace"
    layers = [] if mace else plain_linear_layers(backbone)
    refusal = InputError(f"backbone '{backbone.name}' cannot do strategy 'lora:{rank}': it has no plain "
                         f"torch.nn.Linear layer (its weights sit in {_layer_kinds(backbone.model)})", field="strategy")
    if not mace and not layers:
        raise refusal
    if mace:
        _apply_mace(backbone.model, rank, alpha, seed)
    else:
        for p in backbone.model.parameters():
            p.requires_grad_(False)
        generator = torch.Generator().manual_seed(int(seed))
        for _, layer in layers:
            parametrize.register_parametrization(layer, "weight", LowRankUpdate(layer.weight, rank, alpha, generator))
    record = {"rank": rank, "alpha": alpha, **lora_record(backbone)}
    if not record["adapted_layers"]:  # a MACE model without a layer MACE's LoRA takes
        raise refusal
    return record


def describe_lora(record: dict) -> str:
    """One line for the log: what `apply_lora` adapted."""
    return (f"lora:{record['rank']}: {record['adapted_layers']} layers adapted ({record['implementation']}), "
            f"covering {record['covered_fraction']:.1%} of the {record['base_parameters']} pretrained parameters; "
            f"{record['adapter_parameters']} adapter parameters trained, every pretrained one frozen")


def _apply_mace(model: nn.Module, rank: int, alpha: float, seed: int) -> None:
    """MACE's own LoRA (equivariant o3.Linear, e3nn radial MLP layers, dense Linear), seeded."""
    from mace.modules.lora import inject_lora

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        inject_lora(model, rank=rank, alpha=alpha, wrap_equivariant=True, wrap_dense=True)


def _mace_adapters(model: nn.Module) -> list[nn.Module]:
    mace_lora = sys.modules.get("mace.modules.lora")  # never imported: no MACE adapter exists
    if mace_lora is None:
        return []
    kinds = (mace_lora.LoRADenseLinear, mace_lora.LoRAFCLayer, mace_lora.LoRAO3Linear)
    return [m for m in model.modules() if isinstance(m, kinds)]


def _own_adapters(model: nn.Module) -> list[tuple[nn.Module, LowRankUpdate]]:
    out = []
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            out += [(m, p) for p in m.parametrizations.weight if isinstance(p, LowRankUpdate)]
    return out


def lora_record(backbone) -> dict:
    """What the adapters cover: adapted layers, adapter parameters, the pretrained parameters
    and the fraction of them that sit in adapted weights (their biases and the rest stay frozen)."""
    model = backbone.model
    own, mace = _own_adapters(model), _mace_adapters(model)
    adapters = [p for _, u in own for p in u.parameters()] + [
        p for m in mace for n, p in m.named_parameters() if not n.startswith("base.")]
    ids = {id(p) for p in adapters}
    base = sum(p.numel() for p in model.parameters() if id(p) not in ids)
    covered = sum(m.parametrizations.weight.original.numel() for m, _ in own)
    covered += sum(m.base.weight.numel() for m in mace)
    return {
        "implementation": "mace.modules.lora" if mace else "torch.nn.utils.parametrize",
        "adapted_layers": len(own) + len(mace),
        "adapter_parameters": sum(p.numel() for p in adapters),
        "base_parameters": base,
        "covered_fraction": covered / base if base else 0.0,
    }


def has_lora(backbone) -> bool:
    return bool(_own_adapters(backbone.model) or _mace_adapters(backbone.model))


def merge_lora(backbone) -> None:
    """Fold every adapter into its layer's weight: a plain model again, every parameter trainable."""
    model = backbone.model
    for module, _ in _own_adapters(model):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    if _mace_adapters(model):
        from mace.modules.lora import merge_lora_weights

        merge_lora_weights(model)
    for p in model.parameters():
        p.requires_grad_(True)
