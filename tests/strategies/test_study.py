"""Strategies as a study axis: crossed with optimizers x LRs x seeds at the same budget, checked
against every backbone before any folder exists, selected and reported per (optimizer, strategy);
a study without the axis keeps its hashes, trials and report columns."""

from __future__ import annotations

import csv

import pytest
import yaml

from optbench.errors import InputError
from optbench.study import load_study, run_study
from optbench.study.trials import expand, resolve_dataset


def _write(folder, **extra):
    from ase.io import read, write

    from tests.conftest import ETHANOL_MINI

    train, test = folder / "train.xyz", folder / "test.xyz"
    write(train, read(ETHANOL_MINI / "train.xyz", index=":8"), format="extxyz")
    write(test, read(ETHANOL_MINI / "test_MD.xyz", index=":3"), format="extxyz")
    study = {"name": "strat", "datasets": [{"name": "eth", "train": str(train), "tests": {"id": str(test)}}],
             "optimizers": {"adamw": {"lrs": [1e-3, 1e-4]}, "sgd": {"lrs": [1e-3, 1e-4]}}, "seeds": [0, 1],
             "max_steps": 2, "eval_every": 1, "batch_size": 4, "refine": False, "properties": False,
             "curvature": None, "forgetting": False, **extra}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _trials(study, out):
    return expand(study, out, {d.name: resolve_dataset(d) for d in study.datasets})


def test_every_strategy_gets_every_optimizers_grid_and_seeds(tmp_path):
    study = load_study(_write(tmp_path, strategies=["full", "freeze:readout,embedding"], lr_factors={"bond": 2.0}))
    assert study.strategies == ["full", "freeze:embedding,readout"]
    trials = _trials(study, tmp_path / "out")
    assert len(trials) == 2 * 2 * 2 * 2  # optimizers x strategies x LRs x seeds
    for opt in ("adamw", "sgd"):
        for strategy in study.strategies:
            arm = [t for t in trials if t.optimizer == opt and t.strategy == strategy]
            assert sorted((t.lr, t.seed) for t in arm) == sorted((lr, s) for lr in (1e-3, 1e-4) for s in (0, 1))
            assert {t.config.strategy for t in arm} == {strategy} and {t.row()["strategy"] for t in arm} == {strategy}
    assert all(t.config.lr_factors == {"bond": 2.0} for t in trials)
    assert len({t.key for t in trials}) == len(trials)
    assert {t.arm for t in trials} == {("eth", "chgnet", o, *(() if s == "full" else (s,)))
                                       for o in ("adamw", "sgd") for s in study.strategies}


def test_without_the_axis_hashes_and_trials_stay_as_they_were(tmp_path):
    plain = load_study(_write(tmp_path))
    explicit = load_study(_write(tmp_path, strategies=["full"], lr_factors={}))
    assert plain.strategies == ["full"] and explicit.hash() == plain.hash()
    assert load_study(_write(tmp_path, strategies=["full", "freeze:readout"])).hash() != plain.hash()
    trials = _trials(plain, tmp_path / "out")
    for t in trials:  # the run identity of a full trial does not mention the strategy
        assert t.strategy == "full" and "strategy" not in t.config.identity() and "lr_factors" not in t.config.identity()
        assert t.arm == (t.dataset, t.backbone, t.optimizer)


@pytest.mark.parametrize("extra,field,needle", [
    ({"strategies": ["full", "freez:readout"]}, "strategies.1", "unknown strategy 'freez'"),
    ({"strategies": ["full", "full"]}, "strategies", "distinct"),
    ({"strategies": []}, "strategies", "at least 1"),
    ({"lr_factors": {"readout": 0}}, "lr_factors", "> 0"),
    ({"finetune": {"strategy": "freeze:readout"}}, None, "strategies: [...]"),
    ({"finetune": {"lr_factors": {"readout": 2}}}, None, "`lr_factors:` of the study"),
])
def test_bad_axis_names_the_field_and_line(tmp_path, extra, field, needle):
    path = _write(tmp_path, **extra)
    with pytest.raises(InputError) as err:
        load_study(path)
    assert needle in err.value.message and str(path) in str(err.value)
    if field:
        assert err.value.field == field


def test_strategies_are_checked_against_the_backbone_before_any_folder(tmp_path):
    study = load_study(_write(tmp_path, strategies=["full", "freeze:readout", "freeze:head"]))
    with pytest.raises(InputError, match="field 'strategies.2'") as err:
        run_study(study, tmp_path / "out")
    assert "'head'" in err.value.message and "chgnet" in err.value.message
    assert not (tmp_path / "out").exists()


def test_a_study_selects_and_reports_each_optimizer_strategy_apart(tmp_path):
    from optbench.layout import StudyDir
    from optbench.report.aggregate import StudyData

    study = load_study(_write(tmp_path, optimizers={"adamw": {"lrs": [1e-3]}}, seeds=[0],
                              strategies=["full", "freeze:embedding,readout"]))
    run_study(study, tmp_path / "out")
    folder = StudyDir(tmp_path / "out")
    rows = folder.index()["trials"]
    assert [(r["strategy"], r["selected"]) for r in rows] == [("full", True), ("freeze:embedding,readout", True)]
    assert set(folder.index()["selected_lr"]) == {"eth|chgnet|adamw", "eth|chgnet|adamw|freeze:embedding,readout"}
    with open(folder.results_csv) as fh:
        table = list(csv.DictReader(fh))
    assert [(r["optimizer"], r["strategy"]) for r in table] == [
        ("adamw", "full"), ("adamw", "freeze:embedding,readout")]
    summary = StudyData(folder.path).summary()
    assert [s["optimizer"] for s in summary] == ["adamw / full", "adamw / freeze:embedding,readout"]
    assert all(s["n_seeds"] == 1 for s in summary)  # one trial each: never averaged together
    assert "adamw / freeze:embedding,readout" in folder.report_md.read_text()
