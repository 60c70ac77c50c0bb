"""The published study, results/paper-cpu, rebuilds the same tables, claims and figures from what is committed
(on a copy: the committed folder is never written), and holds no weights or checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

from optbench.cli import main
from optbench.io import read_json

PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "paper-cpu"
REBUILT = ("report.md", "claims.md", "results.csv")


def test_the_committed_paper_cpu_study_rebuilds_its_report(tmp_path, cli_console):
    copy = tmp_path / "paper-cpu"
    shutil.copytree(PUBLISHED, copy)
    for name in REBUILT:
        (copy / name).unlink()
    shutil.rmtree(copy / "figures")
    assert main(["report", str(copy)]) == 0
    for name in REBUILT:
        assert (copy / name).read_text() == (PUBLISHED / name).read_text(), f"{name} differs from the committed one"
    assert sorted(p.name for p in (copy / "figures").iterdir()) == sorted(p.name for p in (PUBLISHED / "figures").iterdir())


def test_the_committed_study_says_how_it_was_run_and_carries_no_weights():
    record = read_json(PUBLISHED / "run.json")
    assert any("--preset paper-cpu" in c for c in record["commands"])
    assert record["git"] and record["wall_time_s"] > 0 and record["trials"] == 168
    files = [p.relative_to(PUBLISHED).as_posix() for p in PUBLISHED.rglob("*") if p.is_file()]
    assert sum(f.endswith("/results.json") for f in files) == 168
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pth.tar", ".safetensors")) or "/model/" in f]


def test_the_committed_study_names_optbench_files_relative_to_the_package():
    """No absolute path to a built-in suite (the machine that ran it): `optbench/suite/...` instead."""
    import re

    texts = [p.read_text() for p in PUBLISHED.rglob("*") if p.suffix in (".json", ".jsonl", ".csv", ".md")]
    assert any('"optbench/suite/' in t for t in texts)
    assert not [t for t in texts if re.search(r'"/[^"]*/optbench/suite/', t)]
