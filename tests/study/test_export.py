"""A study exported for publication rebuilds the same tables without its weights, checkpoints or caches;
a checkpoint of a trial loads as a model; a session of `optbench run` is recorded with its wall time."""

from __future__ import annotations

import shutil

import pytest
import torch

from optbench.cli import main
from optbench.io import read_json


def test_export_rebuilds_the_same_tables_without_the_original(sequential, tmp_path, cli_console):
    _, out = sequential
    study = tmp_path / "study"
    shutil.copytree(out, study)  # the session's study stays for the other tests; this copy is deleted
    dest = tmp_path / "results" / "tiny"
    assert main(["export", str(study), str(dest)]) == 0
    record = read_json(dest / "run.json")
    assert record["sessions"] and record["wall_time_s"] > 0 and record["commands"][0]
    assert {"python", "torch", "chgnet", "ase", "phonopy", "pymatgen", "numpy"} <= set(record["versions"])
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {"report.md", "report.html", "results.csv", "claims.md", "study.json", "run.json"} <= files
    assert any(f.startswith("figures/") for f in files)
    assert sum(f.endswith("/results.json") for f in files) == 8 and sum(f.endswith("/metrics.jsonl") for f in files) == 8
    assert not [f for f in files if f.endswith((".pt", ".pth.tar")) or "/model/" in f or f.startswith("cache/")]
    before = {name: (study / name).read_text() for name in ("report.md", "results.csv", "claims.md")}
    shutil.rmtree(study)
    for name in ("report.md", "results.csv", "claims.md"):
        (dest / name).unlink()
    assert main(["report", str(dest)]) == 0
    assert (dest / "report.md").read_text() == before["report.md"]
    assert (dest / "claims.md").read_text() == before["claims.md"]
    assert (dest / "results.csv").read_text() == before["results.csv"]


def test_export_refuses_a_folder_that_is_not_empty(sequential, tmp_path, cli_console):
    _, out = sequential
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "x").write_text("x")
    assert main(["export", str(out), str(tmp_path / "dest")]) == 2
    assert main(["export", str(tmp_path), str(tmp_path / "other")]) == 2  # not a study folder


def test_a_checkpoint_loads_as_the_run_model_before_refinement(sequential):
    from optbench.backbones import load_backbone

    _, out = sequential
    trial = next(p for p in sorted((out / "trials").iterdir()) if (p / "checkpoints" / "final.pt").is_file())
    final = load_backbone(trial / "checkpoints" / "final.pt")
    refined = load_backbone(trial)
    saved = torch.load(trial / "checkpoints" / "final.pt", weights_only=False)["model_state"]
    state = final.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert any(not torch.equal(state[k], v) for k, v in refined.model.state_dict().items())


def test_a_checkpoint_of_another_model_is_an_input_error(sequential, tmp_path):
    from optbench.backbones import load_backbone
    from optbench.errors import InputError

    _, out = sequential
    trial = next(p for p in sorted((out / "trials").iterdir()) if (p / "checkpoints" / "final.pt").is_file())
    bad = tmp_path / "run"
    shutil.copytree(trial, bad, ignore=shutil.ignore_patterns("*.pt"))
    torch.save({"model_state": {"nope": torch.zeros(1)}}, bad / "checkpoints" / "final.pt")
    with pytest.raises(InputError, match="not a checkpoint of this run's model"):
        load_backbone(bad / "checkpoints" / "final.pt")


def test_export_names_the_packages_files_relative_to_it(sequential, tmp_path, cli_console):
    """A path into a built-in suite is exported from the package's folder on, in every text file alike and byte
    for byte otherwise: the export names no folder of the machine that ran the study."""
    from pathlib import Path

    import optbench

    _, out = sequential
    study = tmp_path / "study"
    shutil.copytree(out, study)
    suite = Path(optbench.__file__).resolve().parent / "suite" / "crystal" / "train.extxyz"
    (study / "analyses" / "note").mkdir(parents=True)
    (study / "analyses" / "note" / "error.txt").write_bytes(f"read {suite}\r\nand /elsewhere/optbench/suite/x\r\n".encode())
    assert main(["export", str(study), str(tmp_path / "dest")]) == 0
    assert (tmp_path / "dest" / "analyses" / "note" / "error.txt").read_bytes() == \
        b"read optbench/suite/crystal/train.extxyz\r\nand optbench/suite/x\r\n"
    assert (tmp_path / "dest" / "results.csv").read_bytes() == (study / "results.csv").read_bytes()
    prefix = str(Path(optbench.__file__).resolve().parent.parent)
    texts = [p.read_text() for p in (tmp_path / "dest").rglob("*") if p.suffix in (".json", ".jsonl", ".csv", ".md", ".txt")]
    assert texts and not any(f"{prefix}/optbench" in t for t in texts)
