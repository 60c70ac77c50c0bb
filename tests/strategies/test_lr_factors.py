"""Per-group LR factors: every first-order optimizer of the registry is built with one param group
per parameter group, lr = base x factor, keeps the factor under schedules, and steps each group by
its factor; L-BFGS (one group only) is refused by name."""

from __future__ import annotations

import pytest
import torch

from optbench.config import FinetuneConfig
from optbench.data.io import read_frames
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights, compute_loss
from optbench.optim import REGISTRY, build_optimizer, set_mode
from optbench.run.schedule import scheduler
from optbench.strategies import flat_parameters, prepare
from tests.curvature.toy import ETHANOL, ToyBackbone

FIRST_ORDER = [name for name, spec in REGISTRY.items() if not spec.second_order]
FACTORS = {"embedding": 0.1, "readout": 3.0}
LR = 1e-3


def _config(tmp_path, optimizer: str, factors: dict | None, strategy: str = "full") -> FinetuneConfig:
    return FinetuneConfig(train=tmp_path / "t.xyz", optimizer=optimizer, lr=LR, lr_factors=factors or {},
                          strategy=strategy)


def _one_step(optimizer: str, config: FinetuneConfig) -> tuple[torch.optim.Optimizer, dict[str, torch.Tensor]]:
    """A fresh toy (seed 0) stepped once on two ethanol frames: (optimizer, displacement by parameter name)."""
    bb = ToyBackbone()
    groups = prepare(bb, config)
    opt = build_optimizer(optimizer, groups, config.lr, config.weight_decay, **config.optimizer_kwargs)
    fs = FeaturizedSet(read_frames(ETHANOL, index=":2"), bb)
    before = {n: p.detach().clone() for n, p in bb.named_parameters()}
    opt.zero_grad()
    compute_loss(bb, fs.batch([0, 1]), LossWeights(stress=0.0))[0].backward()
    opt.step()
    set_mode(opt, train=False)  # ScheduleFree: the weights it reports
    return opt, {n: p.detach() - before[n] for n, p in bb.named_parameters()}


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_every_optimizer_steps_each_group_by_its_factor(name, tmp_path):
    opt, moved = _one_step(name, _config(tmp_path, name, FACTORS))
    by_group = {g["group"]: g for g in opt.param_groups}
    assert list(by_group) == ["embedding", "interaction", "readout", "reference"]
    for group, g in by_group.items():
        assert g["lr"] == pytest.approx(LR * FACTORS.get(group, 1.0), rel=1e-12)
        assert g["lr_factor"] == FACTORS.get(group, 1.0)
    _, plain = _one_step(name, _config(tmp_path, name, None))
    toy_groups = ToyBackbone().parameter_groups()
    for group, names in toy_groups.items():
        for n in names:
            if n.startswith("unused"):
                continue
            assert plain[n].abs().max() > 0, (name, n)
            torch.testing.assert_close(moved[n], FACTORS.get(group, 1.0) * plain[n], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("schedule", ["warmup_cosine", "cosine"])
def test_schedules_keep_each_groups_factor(schedule, tmp_path):
    bb = ToyBackbone()
    groups = prepare(bb, _config(tmp_path, "adamw", FACTORS))
    opt = build_optimizer("adamw", groups, LR)
    sched = scheduler(opt, schedule, 3, 10)
    for _ in range(5):
        opt.step()
        sched.step()
        ratios = {g["group"]: g["lr"] / LR for g in opt.param_groups}
        mult = ratios["interaction"]
        assert 0 < mult <= 1
        assert ratios["embedding"] == pytest.approx(0.1 * mult) and ratios["readout"] == pytest.approx(3.0 * mult)


def test_without_factors_one_group_in_the_models_order(tmp_path):
    bb = ToyBackbone()
    groups = prepare(bb, _config(tmp_path, "adamw", None, "freeze:reference"))
    assert len(groups) == 1 and set(groups[0]) == {"params"}  # the optimizer of a full run, unchanged
    assert [id(p) for p in flat_parameters(groups)] == [id(p) for p in bb.parameters()]
    assert all(p is not bb.model.e0 for p in flat_parameters(groups))


def test_lbfgs_is_refused_by_name(tmp_path):
    for optimizer in ("lbfgs", "torch.optim:LBFGS"):
        with pytest.raises(InputError, match="field 'lr_factors'") as err:
            prepare(ToyBackbone(), _config(tmp_path, optimizer, {"readout": 2.0}))
        assert optimizer in err.value.message and "single parameter group" in err.value.message
    assert len(prepare(ToyBackbone(), _config(tmp_path, "lbfgs", None))) == 1  # without factors it trains
