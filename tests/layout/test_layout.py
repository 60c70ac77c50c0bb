"""RunDir and StudyDir: the one place that knows the run and study folders' file names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from optbench.config import FinetuneConfig
from optbench.errors import InputError
from optbench.layout import LOG_FILE, PropertyFile, RunDir, StudyDir, model_folder, pretrained_key
from optbench.lock import LOCK_FILE


@pytest.fixture(scope="module")
def finished_run(ethanol_small, tmp_path_factory):
    """A tiny real CHGNet run with refinement: (its config, its result)."""
    from optbench.run import finetune

    cfg = FinetuneConfig(model="chgnet", train=ethanol_small["train"], tests={"id": ethanol_small["id"]},
                         optimizer="adamw", lr=1e-3, batch_size=4, max_steps=4, eval_every=2, checkpoint_every=2,
                         refine="lbfgs", refine_steps=1, refine_structures=4, out=tmp_path_factory.mktemp("r") / "run")
    return cfg, finetune(cfg)


def test_a_run_folder_holds_what_run_dir_names(finished_run):
    cfg, result = finished_run
    run = RunDir(cfg.out)
    on_disk = {p.name for p in run.path.iterdir()}
    assert on_disk - {LOG_FILE, LOCK_FILE} <= set(RunDir.ENTRIES)
    assert {run.results_path, run.metrics_path, run.config_path, run.zero_shot_path} <= set(run.path.iterdir())
    assert run.model_dir.is_dir() and model_folder(run.path) == run.model_dir
    assert run.checkpoints() == ["final", "last", "mid", "refined", "start"]
    assert run.checkpoint("final") == run.path / "checkpoints" / "final.pt" and run.checkpoint("final").is_file()
    assert run.crash() is None and not run.crash_path.exists()


def test_run_dir_reads_results_metrics_and_config(finished_run):
    cfg, result = finished_run
    run = RunDir(cfg.out)
    assert run.results() == json.loads((Path(cfg.out) / "results.json").read_text())
    assert run.results()["metrics"] == result["metrics"] and run.completed()
    metrics = run.metrics()
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    assert [m["step"] for m in metrics if "valid_loss" in m] == [2, 4]
    assert run.zero_shot()["metrics"] == result["metrics"]["zero_shot"]
    loaded = run.config()
    assert isinstance(loaded, FinetuneConfig) and loaded.hash() == cfg.hash() == result["config_hash"]
    assert run.config_record()["config_hash"] == cfg.hash() and "inputs" in run.config_record()


def test_an_empty_folder_is_no_run(tmp_path):
    run = RunDir(tmp_path)
    assert run.results() is None and run.crash() is None and not run.completed()
    assert run.metrics() == [] and run.checkpoints() == [] and run.config_record() is None
    assert model_folder(tmp_path) == tmp_path
    with pytest.raises(InputError, match="no config.yaml"):
        run.config()


def test_run_config_reads_back_what_was_written_and_takes_another_device(tmp_path, ethanol_small):
    cfg = FinetuneConfig(train=ethanol_small["train"], lr=3e-4, seed=5, loss_weights={"forces": 3.0}, out=tmp_path)
    RunDir(tmp_path).config_path.write_text(yaml.safe_dump({**cfg.to_yaml_dict(), "inputs": {}}))
    back = RunDir(tmp_path).config(device="cpu")
    assert back == cfg and back.hash() == cfg.hash()
    RunDir(tmp_path).config_path.write_text("- a list\n")
    with pytest.raises(InputError, match=r"not a mapping\); start over"):
        RunDir(tmp_path).config_record(hint="start over")


def test_metrics_append_and_truncate(tmp_path):
    run = RunDir(tmp_path)
    run.start_metrics()
    for step in range(1, 4):
        run.append_metrics({"step": step, "loss": float("nan") if step == 3 else 0.5 * step})
    assert run.metrics() == [{"step": 1, "loss": 0.5}, {"step": 2, "loss": 1.0}, {"step": 3, "loss": None}]
    run.truncate_metrics(2)
    assert [m["step"] for m in run.metrics()] == [1, 2]


def _fake_study(folder: Path) -> StudyDir:
    """A study folder written by hand: two trials, properties of one trial and of the pretrained model."""
    study = StudyDir(folder)
    rows = [{"trial": "bbb", "dataset": "d1", "optimizer": "sgd"}, {"trial": "aaa", "dataset": "d1", "optimizer": "adamw"}]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps({"trials": rows}))
    (folder / "trials" / "bbb").mkdir(parents=True)
    (folder / "trials" / "bbb" / "results.json").write_text(json.dumps({"status": "completed"}))
    for key in ("aaa", pretrained_key("chgnet")):
        for struct in ("Si", "Cu"):
            path = folder / "analyses" / "properties" / "d1" / key / struct / "eos.json"
            path.parent.mkdir(parents=True)
            path.write_text("{}")
    for ck in ("refined", "final"):
        path = folder / "analyses" / "curvature" / "aaa" / ck / "curvature.json"
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    return study


def test_study_dir_layout(tmp_path):
    study = _fake_study(tmp_path / "s")
    base = tmp_path / "s"
    assert study.is_study() and not StudyDir(tmp_path).is_study()
    trials = study.trials()
    assert [t.key for t in trials] == ["bbb", "aaa"] and trials[1].row["optimizer"] == "adamw"
    assert trials[0].run.path == base / "trials" / "bbb" and trials[0].run.completed()
    assert trials[1].run.results() is None
    assert study.property_path("d1", "aaa", "Si", "eos") == base / "analyses/properties/d1/aaa/Si/eos.json"
    assert study.curvature_path("aaa", "final") == base / "analyses/curvature/aaa/final/curvature.json"
    assert study.forgetting_path("aaa") == base / "analyses/forgetting/aaa.json"
    assert study.lr_range_path("d1", "mace:x", "pkg:Opt") == base / "lr_range/d1/mace_x/pkg_Opt.json"
    assert study.failed_path(study.forgetting_path("aaa")).name == "aaa.failed.json"
    assert (study.results_csv, study.report_md, study.report_html, study.figures_dir) == (
        base / "results.csv", base / "report.md", base / "report.html", base / "figures")


def test_study_dir_names_each_stored_property(tmp_path):
    study = _fake_study(tmp_path / "s")
    found = sorted(study.property_files(), key=lambda p: (p.key, p.structure))
    assert [(p.key, p.structure, p.name, p.pretrained) for p in found] == [
        ("aaa", "Cu", "eos", False), ("aaa", "Si", "eos", False),
        ("pretrained-chgnet", "Cu", "eos", True), ("pretrained-chgnet", "Si", "eos", True)]
    one = list(study.property_files("d1", "aaa"))
    assert [p.structure for p in one] == ["Cu", "Si"] and all(isinstance(p, PropertyFile) for p in one)
    assert [ck for ck, _ in study.curvature_files("aaa")] == ["final", "refined"]
    assert study.curvature_files("bbb") == []
