"""`mace_recipe`: its values are MACE's own defaults (read from mace-torch), its optimizer is torch's
Adam with amsgrad, whose preconditioner model matches the step torch takes, and its EMA is torch_ema's."""

from __future__ import annotations

import argparse

import pytest
import torch

from optbench.curvature import preconditioner_from_state
from optbench.errors import InputError
from optbench.optim import FIRST_ORDER, REGISTRY, build_optimizer
from optbench.optim.recipe import Recipe, recipe_for
from optbench.run.schedule import EMA


@pytest.fixture(scope="module")
def mace_args() -> argparse.Namespace:
    """mace_run_train's defaults, parsed by mace-torch's own argument parser."""
    from mace.tools.arg_parser import build_default_arg_parser

    return build_default_arg_parser().parse_args(["--name", "x", "--train_file", "train.xyz"])


def test_recipe_values_are_maces_defaults(mace_args):
    a, spec = mace_args, REGISTRY["mace_recipe"]
    r = spec.recipe
    assert (a.scheduler, a.lr_factor, a.scheduler_patience) == ("ReduceLROnPlateau", r.lr_factor, r.scheduler_patience)
    assert a.ema_decay == r.ema_decay and a.amsgrad is spec.defaults["amsgrad"] is True
    assert a.weight_decay == spec.defaults["weight_decay"] and (a.beta, 0.999) == torch.optim.Adam([torch.zeros(1)]).defaults["betas"]
    assert a.swa_lr / a.lr == pytest.approx(r.stage_two_lr_factor)
    ratios = {"energy": a.swa_energy_weight / a.energy_weight, "forces": a.swa_forces_weight / a.forces_weight,
              "stress": a.swa_stress_weight / a.stress_weight}
    assert ratios == r.stage_two_factors
    assert r.stage_two_lr is None and r.stage_two_weights == {} and r.start_stage_two is None


@pytest.mark.parametrize("budget", [2, 3, 4, 7, 12, 300, 2048])
def test_stage_two_starts_where_mace_starts_it(mace_args, budget):
    """MACE's get_swa places the start at max(1, max_num_epochs // 4 * 3); the recipe applies it to the step
    budget, and SWALR (anneal_epochs=1) sets the stage-two LR on its first step, at once."""
    from mace.tools.scripts_utils import get_swa

    args = argparse.Namespace(**{**vars(mace_args), "max_num_epochs": budget, "start_swa": None, "loss": "weighted"})
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    swa, _ = get_swa(args, model, opt, [False])
    assert Recipe().stage_two_start(budget, steps_per_epoch=1) == args.start_swa
    assert opt.param_groups[0]["lr"] == args.lr
    opt.step()  # no gradients: moves nothing (the scheduler expects a step before its own)
    swa.scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(args.swa_lr)
    assert Recipe(start_stage_two=2).stage_two_start(budget * 5, steps_per_epoch=5) == (10 if budget > 2 else None)
    assert Recipe(stage_two=False).stage_two_start(budget, 1) is None


def test_mace_recipe_is_a_baseline_not_one_of_the_seven():
    from optbench.study.presets import PRESETS

    assert "mace_recipe" not in FIRST_ORDER and len(FIRST_ORDER) == 7
    for name in ("quick", "paper"):  # the comparisons of the seven; other presets may add the baseline
        assert tuple(PRESETS[name]["optimizers"]) == FIRST_ORDER
    assert REGISTRY["mace_recipe"].lr_range == {} and not REGISTRY["mace_recipe"].supports_schedule


def test_amsgrad_preconditioner_is_the_step_torch_takes():
    """With a gradient that shrinks, amsgrad divides by the running max of v, not by v: the update
    equals -P m/(1 - beta1^t) with P read from the state, and differs from Adam's P (beta2 0.5 here,
    so that v falls well below its max within a few steps)."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True),
              torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)]
    coef = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    lr, steps = 1e-2, 6
    opt = build_optimizer("mace_recipe", params, lr, betas=(0.9, 0.5))
    assert opt.param_groups[0]["amsgrad"] and opt.param_groups[0]["weight_decay"] == 5e-7
    for t in range(steps):
        opt.zero_grad()
        sum((c * p).sum() / 4**t for c, p in zip(coef, params, strict=True)).backward()
        before = [p.detach().clone() for p in params]
        opt.step()
    delta = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(params, before, strict=True)])
    m = torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in params]) / (1 - 0.9**steps)
    P = preconditioner_from_state("mace_recipe", opt.state_dict(), params)
    torch.testing.assert_close(P.apply(m), -delta, rtol=1e-6, atol=1e-14)
    state = opt.state_dict()
    for group in state["param_groups"]:
        group["amsgrad"] = False  # Adam's P (current v) is larger here: the max matters
    plain = preconditioner_from_state("mace_recipe", state, params)
    assert (plain.apply(m).abs() > 3 * P.apply(m).abs()).all()  # sqrt(max v / v) = 5.6 after 6 steps


def test_ema_warmup_is_torch_emas():
    """MACE's EMA (torch_ema, use_num_updates=True): decay min(d, (1 + n) / (10 + n)) at update n."""
    from torch_ema import ExponentialMovingAverage

    gen = torch.Generator().manual_seed(1)
    p = torch.nn.Parameter(torch.randn(6, generator=gen, dtype=torch.float64))
    ours, theirs = EMA([p], 0.99, warmup=True), ExponentialMovingAverage([p], decay=0.99)
    for _ in range(30):
        with torch.no_grad():
            p.add_(torch.randn(6, generator=gen, dtype=torch.float64))
        ours.update()
        theirs.update()
    torch.testing.assert_close(ours.shadow[0], theirs.shadow_params[0], rtol=1e-12, atol=1e-12)
    assert ours.updates == theirs.num_updates == 30
    start, plain = p.detach().clone(), EMA([p], 0.99)  # optbench's --ema: decay 0.99 from the first update
    with torch.no_grad():
        p.add_(1.0)
    plain.update()
    torch.testing.assert_close(plain.shadow[0], 0.99 * start + 0.01 * p.detach())


def test_recipe_settings_are_checked_by_name():
    assert recipe_for("adamw") is None
    assert recipe_for("MACE_RECIPE", {"scheduler_patience": 3}).scheduler_patience == 3
    with pytest.raises(InputError, match="has no recipe") as err:
        recipe_for("adam", {"lr_factor": 0.5})
    assert err.value.field == "recipe"
    with pytest.raises(InputError) as err:
        recipe_for("mace_recipe", {"lr_factr": 0.5})
    assert err.value.field == "recipe.lr_factr"
    with pytest.raises(InputError, match="unknown loss term"):
        recipe_for("mace_recipe", {"stage_two_factors": {"virials": 10}})
    weights = Recipe(stage_two_weights={"forces": 50.0}).stage_two_loss({"energy": 2.0, "forces": 10.0, "stress": 0.1})
    assert weights == pytest.approx({"energy": 2000.0, "forces": 50.0, "stress": 1.0})


def test_a_study_names_mace_recipe_beside_the_seven(ethanol_small, tmp_path):
    """A study may add the recipe with its own LR grid (no measured range needed); its trials run it with
    the recipe's defaults and the study's `finetune:` options (here the Huber loss)."""
    from optbench.study.config import StudyConfig
    from optbench.study.trials import expand, resolve_dataset
    from optbench.study.validate import check_optimizers

    study = StudyConfig(datasets=[{"name": "eth", "train": ethanol_small["train"], "tests": {"id": ethanol_small["id"]}}],
                        optimizers={"adamw": {"lrs": [1e-3]}, "mace_recipe": {"lrs": [1e-2]}},
                        finetune={"loss": "huber"})
    check_optimizers(study)
    trials = expand(study, tmp_path, {"eth": resolve_dataset(study.datasets[0])})
    recipe = [t.config for t in trials if t.optimizer == "mace_recipe"]
    assert len(recipe) == 1 and recipe[0].lr == 1e-2 and recipe[0].loss == "huber" and recipe[0].recipe == {}
    assert len({t.key for t in trials}) == 2
