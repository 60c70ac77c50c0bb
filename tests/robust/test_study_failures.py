"""A study in which no trial succeeds fails (exit 1, one line saying so), and every failure keeps
its traceback in a file that the report names."""

from __future__ import annotations

import contextlib
import io
import json

from optbench.cli import main


def _run(argv: list[str]) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, [ln for ln in err.getvalue().strip().splitlines() if not ln.startswith("note:")]


def test_a_study_whose_trials_all_crash_fails_and_keeps_each_traceback(ws):
    study = ws.study("all_crash.yaml", {"user_optim_mod:RaisesInStep": {"lrs": [1e-3, 1e-4]}})
    out = ws.fresh("all_crash")
    code, err = _run(["run", str(study), "--out", str(out)])
    assert code == 1 and len(err) == 1, err
    assert "no trial of 2 completed (2 crashed)" in err[0] and "trials/*/error.txt" in err[0]
    report = (out / "report.md").read_text()
    for trial in sorted((out / "trials").iterdir()):
        text = (trial / "error.txt").read_text()
        assert text.startswith("Traceback (most recent call last)") and "boom in step" in text
        assert json.loads((trial / "crash.json").read_text())["error_file"] == "error.txt"
        assert f"(traceback: trials/{trial.name}/error.txt)" in report


def test_a_study_whose_trials_all_diverge_fails(ws):
    study = ws.study("all_diverge.yaml", {"sgd": {"lrs": [3.0]}}, finetune={"clip_grad": 0})
    out = ws.fresh("all_diverge")
    code, err = _run(["run", str(study), "--out", str(out)])
    assert code == 1 and len(err) == 1, err
    assert err[0] == f"optbench: error: no trial of 1 completed (1 diverged); see {out / 'report.md'}"


def test_a_failed_analysis_keeps_its_traceback_and_the_report_names_it(tmp_path):
    from ase.build import molecule
    from ase.io import write

    from optbench.report.build import failed_analyses
    from optbench.study.analyses import _cached, _property
    from optbench.study.trials import ResolvedDataset

    data = tmp_path / "data"
    data.mkdir()
    write(data / "h2o.xyz", molecule("H2O"))
    (data / "manifest.json").write_text(json.dumps({"structures": {"h2o": "h2o.xyz"}}))
    ds = ResolvedDataset("mol", "molecular", data / "h2o.xyz", {}, {}, folder=data,
                         manifest=json.loads((data / "manifest.json").read_text()))
    study = tmp_path / "study"
    target = study / "analyses" / "properties" / "mol" / "trial-0" / "h2o" / "vibrations.json"
    record = _cached(target, _property, "vibrations", "no-such-model", ds, "h2o", target.parent)
    assert record["status"] == "failed" and record["error_file"] == "vibrations.error.txt"
    assert "no-such-model" in (target.parent / "vibrations.error.txt").read_text()
    assert not target.exists() and target.with_suffix(".failed.json").exists()
    [line] = failed_analyses(study)
    assert line.startswith("properties/mol/trial-0/h2o/vibrations: InputError:")
    assert line.endswith("(traceback: analyses/properties/mol/trial-0/h2o/vibrations.error.txt)")
    target.write_text("{}")  # a later try succeeded: the old failure is no longer reported
    assert failed_analyses(study) == []
