"""`optbench run --dry-run`: checks the study, prints its trials and an estimate, writes nothing; the
paper-cpu preset; properties before and after the refinement as analysis jobs."""

from __future__ import annotations

import json
import os
import re

import pytest

from optbench.cli import main
from optbench.study import load_study
from optbench.study.dryrun import estimate, format_plan, make_plan, makespan
from optbench.study.trials import resolve_dataset

from .conftest import write_study


def _files(root) -> set[str]:
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def test_dry_run_prints_the_trials_and_writes_nothing(study_files, tmp_path, monkeypatch, capsys, cli_console):
    spec = write_study(study_files, tmp_path / "study.yaml")
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPTBENCH_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    assert main(["run", str(spec), "--dry-run", "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert _files(tmp_path) == before and not (tmp_path / "out").exists()
    assert "8 trials" in text and "nothing was run or written" in text
    assert re.search(r"ethanol\s+chgnet\s+adamw\s+0\.001, 0\.0001\s+1\s+2", text)
    assert "estimated wall time" in text


def test_dry_run_of_a_bad_study_is_an_input_error(study_files, tmp_path, cli_console):
    spec = write_study(study_files, tmp_path / "study.yaml", optimizers={"adamw": {"lrs": [1e-3], "kwargs": {"nope": 1}}})
    assert main(["run", str(spec), "--dry-run"]) == 2


def test_the_estimate_scales_with_workers():
    study = load_study(preset="paper-cpu")
    plan = make_plan(study, {d.name: resolve_dataset(d) for d in study.datasets})
    assert len(plan.trials) == 4 * 7 * len(study.optimizers["adamw"].lrs) * 3
    one, two = makespan(plan.trials, 1), makespan(plan.trials, 2)
    assert one == pytest.approx(sum(plan.trials)) and one / 2 <= two * (1 + 1e-12) <= one / 2 + max(plan.trials)
    seq, par = estimate(plan, "process", 1), estimate(plan, "process", 2)
    # the same work, up to the start of each extra worker process
    assert par["cpu_s"] == pytest.approx(seq["cpu_s"], rel=0.01) and par["total_s"] < 0.6 * seq["total_s"]
    assert estimate(plan, "local", 2)["total_s"] == pytest.approx(seq["total_s"])  # local runs one at a time
    assert estimate(plan, "ray", 2)["analyses_s"] == pytest.approx(seq["analyses_s"])  # analyses on the driver


def test_paper_cpu_fits_two_hours_on_two_workers():
    """The preset is sized with the measured costs to finish within ~100 min with 2 process workers."""
    study = load_study(preset="paper-cpu")
    assert {d.suite for d in study.datasets} == {"molecular", "crystal", "liquid", "interface"}
    assert len(study.optimizers) == 7 and len(study.seeds) == 3 and study.refine
    assert len({len(g.lrs) for g in study.optimizers.values()}) == 1 and len(study.optimizers["adamw"].lrs) >= 2
    # start, final and refined: the refined analysis also holds the final spectrum (before_refinement)
    assert study.curvature.checkpoints == ["start", "refined"] and study.forgetting
    assert study.properties == ["final", "refined"]
    plan = make_plan(study, {d.name: resolve_dataset(d) for d in study.datasets})
    assert estimate(plan, "process", 2)["total_s"] <= 105 * 60, format_plan(study, plan, "process", 2)


def test_properties_before_and_after_refinement_are_jobs(tmp_path, ethanol_small):
    from optbench.config import FinetuneConfig
    from optbench.study.analyses import analysis_jobs
    from optbench.study.config import StudyConfig
    from optbench.study.trials import ResolvedDataset, Trial

    ds = ResolvedDataset("mol", "molecular", ethanol_small["train"], {"id": ethanol_small["id"]}, {"id": "ID"},
                         folder=tmp_path, manifest={"structures": {"eth": "eth.extxyz"},
                                                    "reference_properties": {"eth": {"vibrations": {}}}})
    cfg = FinetuneConfig(train=ds.train, lr=1e-3, seed=0, out=tmp_path / "trials" / "t")
    cfg.out.mkdir(parents=True)
    (cfg.out / "results.json").write_text(json.dumps({"status": "completed"}))
    trial = Trial("mol", "molecular", "chgnet", "adamw", 1e-3, 0, cfg)
    study = StudyConfig(datasets=[{"name": "mol", "train": str(ds.train)}], optimizers={"adamw": {"lrs": [1e-3]}},
                        properties=["final", "refined"], curvature=None, forgetting=False)
    jobs = {(j.key, j.model) for j in analysis_jobs(study, {"mol": ds}, [trial])}
    assert jobs == {(trial.key, str(cfg.out)), (f"{trial.key}@final", str(cfg.out / "checkpoints" / "final.pt")),
                    ("pretrained-chgnet", "chgnet")}
    with pytest.raises(Exception, match="need refine: true"):
        StudyConfig(datasets=[{"name": "mol", "train": str(ds.train)}], optimizers={"adamw": {"lrs": [1e-3]}},
                    properties=["final", "refined"], refine=False)


@pytest.mark.parametrize("preset", ["quick", "paper-cpu", "strategies"])
def test_the_plan_counts_the_trials_the_study_runs(preset, tmp_path):
    """Strategies are a study axis: the dry run counts (and costs) every trial that `expand` makes."""
    from optbench.study.trials import expand

    study = load_study(preset=preset)
    datasets = {d.name: resolve_dataset(d) for d in study.datasets}
    plan = make_plan(study, datasets)
    assert len(plan.trials) == len(expand(study, tmp_path, datasets))
    assert sum(r["trials"] for r in plan.rows) == len(plan.trials)
    if preset == "strategies":
        assert len(plan.trials) == 2 * 3 * 3 * 2 and "forgetting" in plan.analyses
        assert len(plan.analyses["forgetting"]) == 2 * 3 * 3 * 2  # each selected trial, every seed
