"""The fine-tuning loop on real CHGNet with tiny real-DFT data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from optbench.config import FinetuneConfig
from optbench.run import finetune


def _numbers(result: dict) -> dict:
    """Everything in results.json that must reproduce exactly (not timings)."""
    return {k: v for k, v in result.items() if k not in ("wall_time_s", "phases_s", "refine", "provenance")} | {
        "refine_losses": (result.get("refine") or {}).get("losses")
    }


def test_run_writes_the_contract(run_config):
    cfg = FinetuneConfig(**run_config)
    result = finetune(cfg)
    out = Path(cfg.out)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["steps"] == 6
    assert {"optimizer", "lr", "seed", "steps", "wall_time_s", "metrics"} <= set(on_disk)
    for stage in ("zero_shot", "final"):
        block = on_disk["metrics"][stage]
        assert {"train", "id", "ood"} <= set(block)
        for name in ("train", "id"):
            m = block[name]
            for key in ("n_structures", "energy_mae", "energy_rmse", "forces_mae", "forces_rmse", "forces_cos"):
                assert m[key] is not None and np.isfinite(m[key])
        assert block["ood"]["forces_mae"] is None  # H-removal set has energies only
    assert result["metrics"]["final"]["train"]["forces_mae"] < result["metrics"]["zero_shot"]["train"]["forces_mae"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "loss" in x]
    assert [x["step"] for x in steps] == list(range(1, 7))
    assert {"epoch", "loss", "loss_energy", "loss_forces", "lr", "grad_norm", "elapsed_s"} <= set(steps[0])
    assert (out / "config.yaml").is_file()
    # native CHGNet file, loadable by CHGNet itself
    from chgnet.model import CHGNet

    meta = json.loads((out / "model" / "backbone.json").read_text())
    CHGNet.from_file(str(out / "model" / meta["file"]))
    # a rerun of a finished run returns the stored result without training again
    mtime = (out / "results.json").stat().st_mtime
    assert finetune(cfg)["metrics"] == result["metrics"]
    assert (out / "results.json").stat().st_mtime == mtime


def test_saved_model_reproduces_final_metrics(run_config, ethanol_small, tmp_path):
    """Evaluation and saving use the same (ScheduleFree eval) weights."""
    from optbench import load_calculator
    from optbench.evaluate import evaluate_model

    cfg = FinetuneConfig(**(run_config | {"optimizer": "schedulefree", "max_steps": 4}))
    result = finetune(cfg)
    block = evaluate_model(str(cfg.out), {"id": ethanol_small["id"]}, out=tmp_path / "eval.json")
    final = result["metrics"]["final"]["id"]
    assert block["id"]["forces_mae"] == pytest.approx(final["forces_mae"], rel=1e-5)
    assert block["id"]["energy_mae"] == pytest.approx(final["energy_mae"], rel=1e-5)
    calc = load_calculator(cfg.out)
    from ase.io import read

    atoms = read(ethanol_small["id"], index=0)
    atoms.calc = calc
    assert np.isfinite(atoms.get_forces()).all()


def test_same_config_same_numbers(run_config, tmp_path):
    a = finetune(FinetuneConfig(**(run_config | {"out": tmp_path / "a"})))
    b = finetune(FinetuneConfig(**(run_config | {"out": tmp_path / "b"})))
    assert _numbers(a) == _numbers(b)


def test_divergence_ends_cleanly(run_config):
    cfg = FinetuneConfig(**(run_config | {"optimizer": "sgd", "lr": 1e3, "clip_grad": 0, "max_steps": 6}))
    result = finetune(cfg)
    assert result["status"] == "diverged"
    assert result["steps"] < 6
    final = result["metrics"]["final"]["train"]
    assert np.isfinite(final["forces_mae"]) and np.isfinite(final["energy_mae"])


def test_lbfgs_refinement_lowers_training_loss(run_config):
    cfg = FinetuneConfig(**(run_config | {"refine": "lbfgs", "refine_steps": 3, "refine_structures": 8}))
    result = finetune(cfg)
    losses = result["refine"]["losses"]
    assert result["refine"]["status"] == "completed"
    assert losses[-1] < losses[0]
    assert set(result["metrics"]) == {"zero_shot", "final", "refined"}
    assert (Path(cfg.out) / "checkpoints" / "refined.pt").is_file()


def test_early_stopping_on_validation(run_config):
    cfg = FinetuneConfig(**(run_config | {"optimizer": "adam", "lr": 1e-2, "max_steps": 30, "eval_every": 1, "patience": 2}))
    result = finetune(cfg)
    assert result["stopped_early"] and result["steps"] < 30
    assert 1 <= result["best_valid_step"] <= result["steps"]


def test_kill_and_resume_matches_uninterrupted(run_config, tmp_path):
    args = ["--model", "chgnet", "--train", str(run_config["train"]), "--test", f"id={run_config['tests']['id']}",
            "--optimizer", "adamw", "--lr", "1e-3", "--batch-size", "2", "--max-steps", "40", "--seed", "3",
            "--eval-every", "5", "--checkpoint-every", "1", "--ema", "0.9"]
    cmd = [sys.executable, "-m", "optbench.cli", "finetune", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 12:
            break
        assert proc.poll() is None, "run finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "results.json").exists()
    subprocess.run([*cmd, "--out", str(killed)], env=env, check=True, capture_output=True)
    subprocess.run([*cmd, "--out", str(tmp_path / "straight")], env=env, check=True, capture_output=True)
    a = json.loads((killed / "results.json").read_text())
    b = json.loads((tmp_path / "straight" / "results.json").read_text())
    assert _numbers(a) == _numbers(b)
    steps = [json.loads(x)["step"] for x in metrics.read_text().splitlines() if "loss" in json.loads(x)]
    assert steps == list(range(1, 41))
