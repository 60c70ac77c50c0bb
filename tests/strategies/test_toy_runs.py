"""Each strategy (and the MACE recipe) trains a few steps on the toy backbone through `finetune`."""

from __future__ import annotations

import pytest
import torch

from optbench.backbones import load_backbone, register_backbone
from optbench.run import finetune
from tests.curvature import toy


@pytest.mark.parametrize("extra, frozen", [
    ({"strategy": "full"}, set()),
    ({"strategy": "freeze:embedding"}, {"embedding"}),
    ({"strategy": "freeze:interaction", "lr_factors": {"readout": 0.1}}, {"interaction"}),
    ({"strategy": "full", "optimizer": "mace_recipe", "valid_fraction": 0.25}, set()),
])
def test_toy_trains_a_few_steps_and_keeps_frozen_groups(extra, frozen, tmp_path, ethanol_dir):
    register_backbone("toy", f"{toy.__name__}:load")
    config = dict(model="toy", train=ethanol_dir / "train.xyz", optimizer="adam", lr=1e-2, batch_size=4,
                  max_steps=4, eval_every=2, seed=0, loss_weights={"stress": 0.0}, out=tmp_path / "run")
    res = finetune({**config, **extra})
    assert res["steps"] == 4 and res["strategy"] == extra["strategy"]
    base, tuned = toy.load(), load_backbone(tmp_path / "run")
    groups = base.parameter_groups()
    before, after = base.model.state_dict(), tuned.model.state_dict()
    kept = {n for g in frozen for n in groups[g]}
    assert bool(kept) == bool(frozen) and all(torch.equal(before[n], after[n]) for n in kept)  # bit-identical
    trained = [n for g, names in groups.items() if g not in frozen and g != "reference" for n in names]
    assert any(not torch.equal(before[n], after[n]) for n in trained)  # the rest did train
    assert res["trainable_parameters"] == sum(p.numel() for n, p in base.model.named_parameters() if n not in kept)
