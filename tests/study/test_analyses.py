"""The study's analyses as typed jobs: which analyses the selected trials get, each once."""

from __future__ import annotations

import json

from ase.io import read

from optbench.config import FinetuneConfig
from optbench.forgetting import frames_outside
from optbench.study.analyses import AnalysisJob, analysis_jobs
from optbench.study.config import StudyConfig
from optbench.study.trials import ResolvedDataset, Trial


def _trial(tmp_path, ds: ResolvedDataset, lr: float, seed: int, status: str | None) -> Trial:
    cfg = FinetuneConfig(train=ds.train, lr=lr, seed=seed, out=tmp_path / "trials" / f"{lr}-{seed}")
    if status is not None:
        cfg.out.mkdir(parents=True)
        (cfg.out / "results.json").write_text(json.dumps({"status": status}))
    return Trial(ds.name, ds.regime, "chgnet", "adamw", lr, seed, cfg)


def test_jobs_of_the_selected_trials(tmp_path, ethanol_small):
    manifest = {"structures": {"eth": "eth.extxyz", "met": "met.extxyz"},
                "reference_properties": {"eth": {"vibrations": {}}, "met": {"vibrations": {}, "md": {}}}}
    ds = ResolvedDataset("mol", "molecular", ethanol_small["train"], {"id": ethanol_small["id"]}, {"id": "ID"},
                         folder=tmp_path, manifest=manifest)
    study = StudyConfig(datasets=[{"name": "mol", "train": str(ethanol_small["train"])}],
                        optimizers={"adamw": {"lrs": [1e-3]}}, seeds=[0, 1],
                        curvature={"checkpoints": ["final", "refined"]})
    trials = [_trial(tmp_path, ds, 1e-3, 0, "completed"), _trial(tmp_path, ds, 1e-3, 1, "completed"),
              _trial(tmp_path, ds, 1e-4, 0, "diverged"), _trial(tmp_path, ds, 1e-4, 1, None)]
    jobs = analysis_jobs(study, {"mol": ds}, trials)
    assert all(isinstance(j, AnalysisJob) for j in jobs)
    assert len({j.ident() for j in jobs}) == len(jobs)  # each job once
    done = {trials[0].key, trials[1].key}
    assert {j.key for j in jobs} == done | {"pretrained-chgnet"}  # no job for a diverged or missing run
    props = [(j.key, j.structure, j.prop) for j in jobs if j.kind == "property"]
    assert sorted(p for p in props if p[0] == "pretrained-chgnet") == [
        ("pretrained-chgnet", "eth", "vibrations"), ("pretrained-chgnet", "met", "md"), ("pretrained-chgnet", "met", "vibrations")]
    assert len(props) == 3 * 3
    pretrained = [j for j in jobs if j.key == "pretrained-chgnet"]
    assert {j.model for j in pretrained} == {"chgnet"}
    curv = [(j.key, j.checkpoint) for j in jobs if j.kind == "curvature"]
    assert curv == [(trials[0].key, "final"), (trials[0].key, "refined")]  # the first seed only
    forget = [j for j in jobs if j.kind == "forgetting"]
    assert [j.key for j in forget] == [trials[0].key, trials[1].key] and {j.pretrained for j in forget} == {"chgnet"}
    assert forget[0].model == str(trials[0].config.out)


def test_forgetting_reads_the_other_datasets(ethanol_small):
    files = {"a": [ethanol_small["id"]], "b": [ethanol_small["ood"], ethanol_small["id"]], "c": []}
    out = frames_outside(files, "a", per_set=2)
    assert list(out) == ["b"] and len(out["b"]) == 4
    first = read(ethanol_small["ood"], index=0)
    assert (out["b"][0].positions == first.positions).all()
