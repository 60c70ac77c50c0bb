"""The zero-shot evaluation beside the training (optbench.run.zero_shot): the same numbers as before
it, and a run killed before its metrics were in computes them on resume."""

from __future__ import annotations

import json

from optbench.config import FinetuneConfig
from optbench.layout import RunDir
from optbench.run import finetune
from optbench.threads import room_beside


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "phases_s", "refine", "provenance")}


def test_beside_the_training_gives_the_numbers_of_before_it(run_config, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTBENCH_CACHE", "off")  # each run computes its predictions (none read back)
    first = finetune(FinetuneConfig(**{**run_config, "out": str(tmp_path / "before")}), beside=False)
    beside = finetune(FinetuneConfig(**{**run_config, "out": str(tmp_path / "beside")}), beside=True)
    assert _numbers(beside) == _numbers(first)
    assert beside["metrics"]["zero_shot"]["train"]["forces_mae"] > 0
    assert "evaluate_beside_train" not in first["phases_s"]
    assert beside["phases_s"]["evaluate_beside_train"] > 0  # seconds on its own thread
    for name in ("before", "beside"):
        run = RunDir(tmp_path / name)
        assert run.zero_shot()["metrics"] == beside["metrics"]["zero_shot"]


def test_final_evaluation_beside_the_refinement_gives_the_numbers_of_before_it(run_config, tmp_path, monkeypatch):
    """The final weights never change once the training is done: their evaluation on a copy beside the
    L-BFGS refinement gives the metrics (final and refined) of the run that evaluates them first."""
    monkeypatch.setenv("OPTBENCH_CACHE", "off")
    cfg = {**run_config, "refine": "lbfgs", "refine_steps": 2}
    first = finetune(FinetuneConfig(**{**cfg, "out": str(tmp_path / "before")}), beside=False)
    beside = finetune(FinetuneConfig(**{**cfg, "out": str(tmp_path / "beside")}), beside=True)
    assert _numbers(beside) == _numbers(first)
    assert list(beside["metrics"]) == ["zero_shot", "final", "refined"]
    assert beside["metrics"]["final"] != beside["metrics"]["refined"]
    assert beside["refine"]["losses"] == first["refine"]["losses"]
    assert beside["phases_s"]["evaluate_beside_refine"] > 0 and "evaluate_beside_refine" not in first["phases_s"]


def test_a_kill_before_the_zero_shot_metrics_were_in_resumes_with_them(run_config, monkeypatch):
    """zero_shot.json without metrics and a last checkpoint: what a kill during the training leaves
    while the evaluation beside it has not finished. The resumed run computes them from the start
    checkpoint's weights, not from the trained ones."""
    monkeypatch.setenv("OPTBENCH_CACHE", "off")
    cfg = FinetuneConfig(**run_config)
    straight = finetune(cfg, beside=True)
    run = RunDir(cfg.out)
    zero = run.zero_shot()
    del zero["metrics"]
    run.zero_shot_path.write_text(json.dumps(zero))
    run.results_path.unlink()
    resumed = finetune(cfg, beside=True)
    assert _numbers(resumed) == _numbers(straight)
    assert run.zero_shot()["metrics"] == straight["metrics"]["zero_shot"]


def test_room_beside_follows_the_cpus_and_the_setting(monkeypatch):
    import optbench.threads as threads

    monkeypatch.delenv("OPTBENCH_BESIDE", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert room_beside(1) and not room_beside(2)
    monkeypatch.setenv("OPTBENCH_BESIDE", "0")
    assert not room_beside(1)
    monkeypatch.setenv("OPTBENCH_BESIDE", "1")
    assert room_beside(4)

