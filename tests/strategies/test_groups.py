"""Every adapter declares parameter groups that cover each parameter exactly once; freezing a group
takes it out of the trainable parameters; unknown names are refused with the backbone's groups."""

from __future__ import annotations

import pytest
import torch

from optbench.backbones import load_backbone
from optbench.backbones.base import group_parameters
from optbench.errors import InputError
from optbench.strategies import apply_strategy, check_strategy, format_groups, group_table

COMMON = {"embedding", "interaction", "readout"}


def _assert_partition(bb, expected: list[str]) -> None:
    groups = bb.parameter_groups()
    assert list(groups) == expected and set(groups) >= COMMON  # the backbone-independent names
    names = [n for members in groups.values() for n in members]
    assert sorted(names) == sorted(n for n, _ in bb.model.named_parameters())  # each exactly once
    assert all(members for members in groups.values())
    rows = group_table(bb)
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in bb.model.parameters())


@pytest.mark.parametrize("spec,expected", [
    ("chgnet", ["embedding", "radial", "interaction", "bond", "angle", "readout", "reference"]),
    ("sevennet-0", ["embedding", "radial", "interaction", "readout", "reference"]),
])
def test_pretrained_backbones_partition_their_parameters(spec, expected):
    _assert_partition(load_backbone(spec), expected)


def test_mace_partitions_its_parameters(small_mace):
    bb = load_backbone(f"mace:{small_mace}")
    _assert_partition(bb, ["embedding", "radial", "interaction", "readout"])  # MACE's E0s and scale are buffers
    groups = bb.parameter_groups()
    assert all(".conv_tp_weights." in n for n in groups["radial"])
    assert any(n.startswith("products.") for n in groups["interaction"])


def test_toy_and_the_default_of_an_adapter_without_groups(toy):
    _assert_partition(toy, ["embedding", "interaction", "readout", "reference"])
    names = ["a.w", "b.w"]
    assert group_parameters(names, ()) == {"all": names}
    assert group_parameters(names, (("x", ("a.*",)),)) == {"x": ["a.w"], "other": ["b.w"]}


def test_freeze_takes_groups_out_of_the_trainable_parameters(toy):
    before = {n for n, _ in toy.named_parameters()}
    apply_strategy(toy, "freeze:embedding,reference")
    frozen = set(toy.parameter_groups()["embedding"]) | {"e0"}
    assert {n for n, _ in toy.named_parameters()} == before - frozen
    assert all(not p.requires_grad for n, p in toy.model.named_parameters() if n in frozen)
    apply_strategy(toy, "freeze:reference,embedding")  # the same strategy again: nothing to do
    with pytest.raises(InputError, match="already prepared"):
        apply_strategy(toy, "full")
    rows = {r["group"]: r for r in group_table(toy)}
    assert rows["embedding"]["trainable"] == 0 and rows["readout"]["trainable"] == rows["readout"]["parameters"]
    assert "embedding" in format_groups(toy).splitlines()[2]


@pytest.mark.parametrize("strategy,factors,optimizer,field,needles", [
    ("freeze:embed", None, None, "strategy", ["backbone 'toy'", "'embed'", "embedding, interaction, readout, reference"]),
    ("freeze:embedding,interaction,readout,reference", None, None, "strategy", ["freezes every trainable parameter"]),
    ("full", {"head": 2.0}, None, "lr_factors", ["backbone 'toy'", "'head'", "embedding"]),
    ("freeze:readout", {"readout": 2.0}, None, "lr_factors", ["readout", "nothing to train"]),
    ("full", {"readout": 2.0}, "lbfgs", "lr_factors", ["lbfgs", "single parameter group"]),
    ("full", {"readout": 2.0}, "torch.optim:LBFGS", "lr_factors", ["torch.optim:LBFGS", "single parameter group"]),
])
def test_refusals_name_the_field_and_the_groups(toy, strategy, factors, optimizer, field, needles):
    with pytest.raises(InputError, match=f"field '{field}'") as err:
        check_strategy(toy, strategy, factors, optimizer)
    for needle in needles:
        assert needle in err.value.message
    assert all(p.requires_grad for p in toy.model.parameters())  # a check never touches the model


def test_check_passes_what_prepare_accepts(toy):
    assert str(check_strategy(toy, "freeze:embedding", {"readout": 0.5}, "adamw")) == "freeze:embedding"
    assert torch.is_grad_enabled()
