"""Presets search each optimizer where its measured LR range test says it works."""

from __future__ import annotations

import math

import pytest

from optbench.regimes import BUILTIN_REGIMES
from optbench.study import load_study
from optbench.study.presets import QUICK_REGIMES, RANGE_TESTS, SEVEN


def test_every_regime_has_a_measured_range():
    assert all(set(RANGE_TESTS[name]) == set(BUILTIN_REGIMES) for name in SEVEN)


@pytest.mark.parametrize("name", SEVEN)
def test_each_grid_covers_its_measured_useful_range(name):
    def measured(regimes):
        tests = [v for k, v in RANGE_TESTS[name].items() if k in regimes]
        return [s for s, _ in tests], min(d for _, d in tests)

    steep, blowup = measured(QUICK_REGIMES)
    quick = load_study(preset="quick").optimizers[name].lrs
    assert len(quick) == 1 and min(steep) / 3 <= quick[0] <= max(steep) * 3 and quick[0] < blowup / 3
    steep, blowup = measured(BUILTIN_REGIMES)
    paper = load_study(preset="paper").optimizers[name].lrs  # 4 LRs: the whole useful range
    assert min(paper) <= min(steep) and max(paper) >= min(max(steep), blowup / 3) / 1.5
    cpu = load_study(preset="paper-cpu").optimizers[name].lrs  # 2 LRs: around the mean steepest LR
    mean = math.exp(sum(math.log(x) for x in steep) / len(steep))
    assert len(cpu) == 2 and min(cpu) <= mean <= max(cpu) * 1.5
    for grid in (paper, cpu):
        assert max(grid) < blowup / 3 * 1.2  # rounding to one digit may lift it a little


def test_optimizers_get_their_own_lrs():
    quick = load_study(preset="quick").optimizers
    paper = load_study(preset="paper").optimizers
    assert len({g.lrs[0] for g in quick.values()}) >= 4
    assert len({tuple(g.lrs) for g in paper.values()}) >= 4
    assert len({len(g.lrs) for g in paper.values()}) == 1  # the same tuning budget for each


@pytest.mark.parametrize("extra,optimizers,message", [
    ({}, {"adamw": {"lrs": [1e-3]}, "sgd": {}}, "give lrs for every optimizer"),
    ({"lr_grid": "auto"}, {"adamw": {"lrs": [1e-3]}, "sgd": {}}, "lr_grid: auto places every grid itself"),
    ({"lr_grid": "auto"}, {"lbfgs": {}}, "first-order"),
])
def test_lr_grid_config_errors_name_the_field(tmp_path, extra, optimizers, message):
    import yaml

    from optbench.errors import InputError

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"datasets": [{"name": "x", "suite": "molecular"}], "optimizers": optimizers, **extra}))
    with pytest.raises(InputError, match=message):
        load_study(path)


def test_strategies_preset_crosses_strategies_with_optimizers():
    """`optbench run --preset strategies`: CHGNet on the molecular and crystal suites, full / freeze /
    replay x adamw / schedulefree / mace_recipe x 2 seeds, one quick LR each, 40 steps, forgetting on; it
    validates and expands to 36 trials, each strategy checked against CHGNet's parameter groups."""
    from optbench.errors import InputError
    from optbench.strategies import Strategy
    from optbench.study.presets import preset, quick_lr

    s = preset("strategies")
    assert [d["suite"] for d in s["datasets"]] == ["molecular", "crystal"] and s["backbones"] == ["chgnet"]
    assert [str(Strategy.parse(x)) for x in s["strategies"]] == s["strategies"]  # canonical strings
    kinds = {x.split(":")[0] for x in s["strategies"]}
    assert kinds == {"full", "freeze", "replay"} and "freeze:embedding" in s["strategies"]
    assert set(s["optimizers"]) == {"adamw", "schedulefree", "mace_recipe"}
    assert s["optimizers"]["mace_recipe"]["lrs"] == [quick_lr("adam")]
    assert all(g["lrs"] == [quick_lr(name)] for name, g in s["optimizers"].items() if name != "mace_recipe")
    assert s["forgetting"] and not s["properties"] and not s["refine"] and s["curvature"] is None
    trials = len(s["datasets"]) * len(s["optimizers"]) * len(s["strategies"]) * len(s["seeds"])
    assert trials == 36 and s["max_steps"] <= load_study(preset="quick").max_steps
    study = load_study(preset="strategies")  # validates: strategies axis, mace_recipe, group names
    assert study.strategies == s["strategies"] and "mace_recipe" in study.optimizers
    with pytest.raises(InputError, match="strategies"):
        preset("nope")
