"""Studies: resumable, same numbers on every executor, clear errors naming field and line."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optbench.cli import main
from optbench.study import run_study

from .conftest import write_study

TIMING = ("wall_time_s",)


def _csv(path: Path) -> list[dict]:
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if not k.endswith(TIMING) and "seconds" not in k} for r in rows]


def test_study_runs_every_trial_and_reports(sequential):
    study, out = sequential
    rows = _csv(out / "results.csv")
    assert len(rows) == 2 * 2 * 2  # datasets x optimizers x lrs (one seed)
    assert {r["status"] for r in rows} <= {"completed", "diverged"}
    # one LR per optimizer and dataset is selected, on validation, for every seed, and it trained
    selected = [r for r in rows if r["selected"] == "True"]
    assert len(selected) == 2 * 2 and {r["status"] for r in selected} == {"completed"}
    for key in ("final.id.forces_mae", "final.valid.forces_mae", "refined.id.forces_mae", "forgetting.force_rms_meV_A"):
        assert all(r[key] not in ("", None) for r in selected), key
    md = (out / "report.md").read_text()
    assert "Recommendations" in md and "Protocol" in md and "adamw" in md
    assert (out / "report.html").stat().st_size > 10_000
    assert list((out / "figures").glob("*.png"))


def test_report_rebuilds_from_stored_results(sequential, tmp_path):
    _, out = sequential
    before = (out / "results.csv").read_text()
    (out / "results.csv").unlink()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "results.csv").read_text() == before
    assert (out / "report.html").exists()


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_executors_give_the_same_numbers(sequential, study_files, tmp_path, executor):
    study, out = sequential
    run_study(study, tmp_path / "out", executor=executor, workers=2)
    assert _csv(tmp_path / "out" / "results.csv") == _csv(out / "results.csv")
    if executor == "ray":  # trials ran in node-local scratch folders; their run folders came back through Ray
        import yaml

        trials = sorted((tmp_path / "out" / "trials").iterdir())
        assert len(trials) == 8 and not [t for t in trials if t.name.startswith(".")]
        for trial in trials:
            assert (trial / "results.json").is_file() and (trial / "checkpoints" / "final.pt").is_file()
            assert yaml.safe_load((trial / "config.yaml").read_text())["out"] == str(trial)


def test_interrupted_study_resumes_without_redoing_trials(sequential, study_files, tmp_path):
    _, reference = sequential
    spec = write_study(study_files, tmp_path / "study.yaml")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "optbench.cli", "run", str(spec), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(out.glob("trials/*/results.json"))) < 3:
        assert proc.poll() is None, "study finished before it could be interrupted"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime for p in out.glob("trials/*/results.json")}
    assert 3 <= len(done) < 8
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    for path, mtime in done.items():
        assert path.stat().st_mtime == mtime, f"{path.parent.name} was run again"
    assert _csv(out / "results.csv") == _csv(reference / "results.csv")


def test_bad_study_names_field_and_line(study_files, tmp_path, capsys):
    spec = write_study(study_files, tmp_path / "study.yaml")
    text = spec.read_text().replace("max_steps: 4", "max_steps: -4")
    spec.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("max_steps"))
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:{line}" in err and "max_steps" in err
    assert not (tmp_path / "out" / "study.json").exists()


def test_unequal_budget_is_refused(study_files, tmp_path, capsys):
    spec = write_study(study_files, tmp_path / "study.yaml",
                       optimizers={"adamw": {"lrs": [1e-3, 1e-4]}, "sgd": {"lrs": [1e-3]}})
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "unequal tuning budget" in capsys.readouterr().err


def test_nested_field_error_points_at_its_line(study_files, tmp_path, capsys):
    spec = write_study(study_files, tmp_path / "study.yaml")
    text = spec.read_text().replace("lrs:\n    - 0.001\n    - 0.0001\n  sgd", "lrs:\n    - 0.001\n    - -1\n  sgd")
    spec.write_text(text)
    assert "- -1" in text
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.strip() == "- -1")
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "optimizers.adamw.lrs" in err and f"{spec}:{line - 2}" in err  # the line of 'lrs:'


def test_seed_statistics_against_hand_computation():
    from scipy import stats

    from optbench.report.aggregate import mean_ci

    values = [1.0, 2.0, 4.0]
    ci = mean_ci(values)
    assert ci["mean"] == pytest.approx(7 / 3)
    sd = (sum((v - 7 / 3) ** 2 for v in values) / 2) ** 0.5
    assert ci["ci"] == pytest.approx(stats.t.ppf(0.975, 2) * sd / 3**0.5)
    assert mean_ci([5.0]) == {"mean": 5.0, "ci": None, "n": 1}
    assert mean_ci([float("nan"), None]) == {"mean": None, "ci": None, "n": 0}
