"""Faults against real tiny runs: kill -9 at random points, corrupted checkpoints and results,
concurrent processes, replaced inputs, divergence. Each ends with identical numbers or a
clear refusal (exit 2, one line naming the file)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from optbench.cli import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
    [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
CLI = [sys.executable, "-m", "optbench.cli"]
STEPS = 8


def _numbers(path: Path) -> dict:
    """What must reproduce exactly in a results.json (not timings)."""
    r = json.loads(Path(path).read_text())
    return {k: v for k, v in r.items() if k not in ("wall_time_s", "phases_s", "refine", "provenance")}


def _args(ws, out, train=None, *extra):
    args = ws.finetune_args(out, *extra, train=train)
    args[args.index("--max-steps") + 1] = str(STEPS)
    return args


def _step_lines(out: Path) -> list[int]:
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(x)["step"] for x in lines if x.strip() and "loss" in json.loads(x)]


def _start_and_kill(args: list[str], out: Path, after_steps: int) -> None:
    """Start `optbench` and SIGKILL it once `after_steps` training steps are logged (0: after set-up)."""
    proc = subprocess.Popen([*CLI, *args], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "zero_shot.json"
    while proc.poll() is None:
        if (after_steps == 0 and marker.exists()) or (after_steps and len(_step_lines(out)) >= after_steps):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def straight(ws, tmp_path_factory):
    """The uninterrupted reference run (in-process)."""
    out = tmp_path_factory.mktemp("faults") / "straight"
    assert main(_args(ws, out)) == 0
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_kill9_at_a_random_step_then_resume_gives_identical_numbers(ws, straight, tmp_path, seed):
    after = int(np.random.default_rng(seed).integers(0, STEPS - 2))
    out = tmp_path / "killed"
    _start_and_kill(_args(ws, out), out, after)
    assert not (out / "results.json").exists()
    (out / "checkpoints").mkdir(exist_ok=True)
    (out / "checkpoints" / ".last.pt.abcd1234.tmp").write_bytes(b"")  # what a kill inside torch.save leaves
    assert main(_args(ws, out)) == 0
    assert _numbers(out / "results.json") == _numbers(straight / "results.json")
    assert _step_lines(out) == list(range(1, STEPS + 1))
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


def test_corrupted_checkpoint_is_refused_then_restart_reproduces(ws, straight, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    (out / "results.json").unlink()
    last = out / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: len(last.read_bytes()) // 2])
    assert main(_args(ws, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(last) in err[0] and "--restart" in err[0]
    assert main([*_args(ws, out), "--restart"]) == 0
    assert _numbers(out / "results.json") == _numbers(straight / "results.json")


def test_replaced_training_file_after_kill_is_refused_and_restart_uses_the_new_data(ws, tmp_path, capsys):
    data = tmp_path / "train.xyz"
    shutil.copy(ws.train, data)
    out = tmp_path / "run"
    _start_and_kill(_args(ws, out, data), out, 2)
    shutil.copy(ws.other_train, data)
    assert main(_args(ws, out, data)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(data.resolve()) in err[0] and "changed" in err[0] and "'train'" in err[0]
    assert not (out / "results.json").exists()
    assert main([*_args(ws, out, data), "--restart"]) == 0
    fresh = tmp_path / "fresh"
    assert main(_args(ws, fresh, data)) == 0
    assert _numbers(out / "results.json") == _numbers(fresh / "results.json")


def test_same_files_by_relative_path_are_the_same_run(ws, straight, tmp_path, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    monkeypatch.chdir(ws.root)
    args = _args(ws, out)
    args[args.index("--train") + 1] = os.path.relpath(ws.train)
    mtime = (out / "results.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "results.json").stat().st_mtime_ns == mtime  # the finished run, not a new one


def test_locked_folder_refused_with_holder_pid_and_free_after_kill9(ws, straight, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys,time; from optbench.lock import folder_lock\n"
        "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"), str(out)],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_args(ws, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"pid {holder.pid}" in err[0] and str(out) in err[0]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(_args(ws, out)) == 0  # the kernel dropped the lock with its process


def test_two_concurrent_runs_never_train_twice(ws, tmp_path):
    out = tmp_path / "run"
    procs = [subprocess.Popen([*CLI, *_args(ws, out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    codes = sorted(p.wait() for p in procs)
    errs = [p.stderr.read() for p in procs]
    assert codes in ([0, 0], [0, 2]), errs
    if codes == [0, 2]:
        assert any("in use by another optbench process (pid" in e for e in errs)
    assert _step_lines(out) == list(range(1, STEPS + 1))  # every step once


def test_a_process_refused_by_the_lock_leaves_the_holders_new_folder_alone(tmp_path, monkeypatch):
    """Both racing processes may see no folder; the loser must not remove what the winner writes."""
    from optbench import lock
    from optbench.errors import LockedError

    out = tmp_path / "run"
    assert lock._make_folder(out) and not lock._make_folder(out)  # exactly one creator
    with lock.claimed_folder(out, keep=("results.json",)):
        (out / "log.txt").write_text("winner\n")
        monkeypatch.setattr(lock, "_make_folder", lambda folder: True)  # the loser believed it created it too
        with pytest.raises(LockedError), lock.claimed_folder(out, keep=("results.json",)):
            pass
        assert (out / "log.txt").read_text() == "winner\n"


@pytest.mark.parametrize(("optimizer", "lr"), [("sgd", 0.3), ("schedulefree", 0.1)])
def test_divergence_restores_the_last_good_state(ws, tmp_path, optimizer, lr):
    """The diverged run's final numbers equal those of a run stopped at the restored step."""
    extra = ("--optimizer", optimizer, "--lr", str(lr), "--clip-grad", "0")
    assert main(_args(ws, tmp_path / "div", None, *extra)) == 0
    div = json.loads((tmp_path / "div" / "results.json").read_text())
    assert div["status"] == "diverged" and 0 < div["steps"] < div["diverged_at_step"] - 1 + 1 <= STEPS
    stop = _args(ws, tmp_path / "stop", None, *extra)
    stop[stop.index("--max-steps") + 1] = str(div["steps"])
    assert main(stop) == 0
    ref = json.loads((tmp_path / "stop" / "results.json").read_text())
    assert ref["status"] == "completed"
    assert div["metrics"]["final"] == ref["metrics"]["final"]
    for block in div["metrics"]["final"].values():
        assert np.isfinite(block["forces_mae"]) and np.isfinite(block["energy_mae"])


# ---------------------------------------------------------------- studies
def _study(ws, name):
    return ws.study(name, {"adamw": {"lrs": [1e-3]}, "sgd": {"lrs": [3.0]}}, finetune={"clip_grad": 0})


@pytest.fixture(scope="module")
def study_done(ws, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "done"
    assert main(["run", str(_study(ws, "fault_study.yaml")), "--out", str(out)]) == 0
    return out


def _csv_numbers(folder: Path) -> list[dict]:
    import csv

    rows = list(csv.DictReader((folder / "results.csv").open()))
    return [{k: v for k, v in r.items() if "time" not in k and "elapsed" not in k} for r in rows]


def test_study_marks_diverged_trials_and_never_ranks_a_failed_optimizer(study_done):
    rows = {r["optimizer"]: r for r in _csv_numbers(study_done)}
    assert rows["sgd"]["status"] == "diverged" and rows["adamw"]["status"] == "completed"
    assert float(rows["sgd"]["final.id.forces_mae"]) > 0  # finite numbers of the restored state
    report = (study_done / "report.md").read_text()
    assert "every trial of sgd (1 diverged) failed; not ranked" in report
    assert "sgd is last" not in report and "below sgd" not in report


def test_kill9_during_a_study_then_resume_gives_identical_numbers(ws, study_done, tmp_path):
    out = tmp_path / "study"
    proc = subprocess.Popen([*CLI, "run", str(_study(ws, "fault_study.yaml")), "--out", str(out)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not list(out.glob("trials/*/metrics.jsonl")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main(["run", str(_study(ws, "fault_study.yaml")), "--out", str(out)]) == 0
    assert _csv_numbers(out) == _csv_numbers(study_done)


def test_truncated_trial_results_are_named_by_report_and_run(ws, study_done, tmp_path, capsys):
    out = tmp_path / "study"
    shutil.copytree(study_done, out)
    res = next(out.glob("trials/*/results.json"))
    res.write_text(res.read_text()[:50])
    for argv in (["report", str(out)], ["run", str(_study(ws, "fault_study.yaml")), "--out", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(res) in err[0] and "JSON" in err[0], err


def test_study_refuses_changed_data(ws, study_done, tmp_path, capsys):
    out = tmp_path / "study"
    shutil.copytree(study_done, out)
    data = Path(json.loads((out / "study.json").read_text())["datasets"]["cu"]["tests"]["id"])
    original = data.read_bytes()
    try:
        data.write_bytes(original.replace(b"energy=", b"energy=1", 1))
        assert main(["run", str(_study(ws, "fault_study.yaml")), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cu.tests.id" in err[0] and "changed" in err[0]
    finally:
        data.write_bytes(original)
