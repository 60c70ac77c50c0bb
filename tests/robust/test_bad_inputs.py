"""Every bad input of issue 14, table-driven: exit 2 (or a typed exit 1) and one line naming the
file and the field, no traceback, no results.json, no empty output folder left behind.

Each case builds its input from the shared tiny workspace (conftest.py) and returns the
argv of one in-process `optbench` call, the strings the error line must hold, and the folder
that must hold no results. `bench/bad_inputs.py` runs the same table against any checkout.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass
class Call:
    argv: list[str]
    needles: list[str]
    out: Path | None = None
    code: int = 2
    out_absent: bool = True  # the output folder must not exist afterwards (an early error)


def _frames_case(ws, name, mutate, needles, *extra):
    frames = ws.frames()
    mutate(frames)
    path = ws.write(f"{name}.xyz", frames)
    out = ws.fresh(name)
    return Call(ws.finetune_args(out, *extra, train=path), [str(path), *needles], out)


def _set(frames, i, what, value):
    getattr(frames[i], what)[...] = value


# ---------------------------------------------------------------- finetune: data
def overlap(ws):
    def m(fr):
        fr[1].positions[2] = fr[1].positions[0]
    return _frames_case(ws, "overlap", m, ["frame 1", "positions", "overlapping"])


def tiny_cell(ws):
    from ase import Atoms

    frames = ws.frames()
    bad = Atoms("Cu", positions=[[0, 0, 0]], cell=np.eye(3) * 0.5, pbc=True)
    bad.info["energy"] = -3.0
    bad.arrays["forces"] = np.zeros((1, 3))
    path = ws.write("tiny_cell.xyz", [bad, *frames[1:]])
    out = ws.fresh("tiny_cell")
    return Call(ws.finetune_args(out, train=path), [str(path), "frame 0", "cell", "neighbours"], out)


def nan_positions(ws):
    return _frames_case(ws, "nanpos", lambda fr: _set(fr, 2, "positions", np.nan), ["frame 2", "positions"])


def inf_positions(ws):
    return _frames_case(ws, "infpos", lambda fr: _set(fr, 0, "positions", np.inf), ["frame 0", "positions"])


def partial_pbc(ws):
    def m(fr):
        fr[3].pbc = [True, True, False]
    return _frames_case(ws, "pbc", m, ["frame 3", "pbc"])


def periodic_without_cell(ws):
    def m(fr):
        fr[1].cell[:] = 0.0
        fr[1].pbc = True
    return _frames_case(ws, "nocell", m, ["frame 1", "cell", "no volume"])


def missing_forces_key(ws):
    out = ws.fresh("fkey")
    return Call(ws.finetune_args(out, "--forces-key", "REF_forces"), [str(ws.train), "REF_forces"], out)


def missing_stress_key(ws):
    out = ws.fresh("skey")
    return Call(ws.finetune_args(out, "--stress-key", "REF_stress"), [str(ws.train), "REF_stress"], out)


def train_is_directory(ws):
    out = ws.fresh("dir")
    return Call(ws.finetune_args(out, train=ws.root), [str(ws.root), "directory"], out)


# ---------------------------------------------------------------- finetune: values and models
def seed_negative(ws):
    out = ws.fresh("seedneg")
    return Call(ws.finetune_args(out, "--seed", "-1"), ["seed"], out)


def seed_too_large(ws):
    out = ws.fresh("seedbig")
    return Call(ws.finetune_args(out, "--seed", str(2**40)), ["seed"], out)


def device_cuda_on_cpu(ws):
    import torch

    out = ws.fresh("cuda")
    dev = "cuda:99" if torch.cuda.is_available() else "cuda"
    return Call(ws.finetune_args(out, "--device", dev), ["device", dev], out)


def device_invalid(ws):
    out = ws.fresh("dev")
    return Call(ws.finetune_args(out, "--device", "tpu7"), ["device", "tpu7"], out)


def chgnet_not_a_model(ws):
    junk = ws.root / "junk_chgnet.pt"
    junk.write_text("not a model")
    out = ws.fresh("chgfile")
    argv = ws.finetune_args(out)
    argv[argv.index("chgnet")] = f"chgnet:{junk}"
    return Call(argv, [str(junk), "model"], out)


def sevennet_not_a_model(ws):
    junk = ws.root / "junk_7net.pth"
    junk.write_bytes(b"\x00\x01garbage")
    out = ws.fresh("7file")
    argv = ws.finetune_args(out)
    argv[argv.index("chgnet")] = f"sevennet:{junk}"
    return Call(argv, [str(junk), "model"], out)


def user_optimizer_raises_in_init(ws):
    out = ws.fresh("uopt")
    return Call(ws.finetune_args(out, "--optimizer", "user_optim_mod:RaisesInInit"), ["optimizer", "refuses"], out)


def user_optimizer_raises_in_step(ws):
    out = ws.fresh("uoptstep")
    return Call(ws.finetune_args(out, "--optimizer", "user_optim_mod:RaisesInStep"), ["RaisesInStep", "boom"], out,
                code=1, out_absent=False)


def optimizer_module_missing(ws):
    out = ws.fresh("nomod")
    return Call(ws.finetune_args(out, "--optimizer", "no_such_mod_xyz:Opt"), ["optimizer", "no_such_mod_xyz"], out)


def optimizer_not_a_class(ws):
    out = ws.fresh("notopt")
    return Call(ws.finetune_args(out, "--optimizer", "user_optim_mod:NotAnOptimizer"), ["optimizer", "NotAnOptimizer"], out)


def yaml_error_one_line(ws):
    cfg = ws.root / "broken.yaml"
    cfg.write_text(f"train: {ws.train}\nlr: [1e-3\nbatch_size: 2\n")
    out = ws.fresh("yaml")
    return Call(["finetune", "--config", str(cfg), "--out", str(out)], [str(cfg), "YAML", "line"], out)


# ---------------------------------------------------------------- finetune: what the run folder holds
def replaced_train_file(ws):
    from optbench.cli import main

    data = ws.root / "replaced_train.xyz"
    shutil.copy(ws.train, data)
    out = ws.fresh("replaced")
    argv = ws.finetune_args(out, train=data)
    assert main(argv) == 0
    shutil.copy(ws.other_train, data)  # same path, new content
    return Call(argv, [str(out), "train", "changed", "--restart"], None, out_absent=False)


def corrupt_checkpoint(ws):
    run = ws.copy_of_done()
    (run / "results.json").unlink()
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: 200])
    return Call(ws.finetune_args(run), [str(last), "checkpoint", "--restart"], run, out_absent=False)


def corrupt_start_checkpoint(ws):
    """Killed before the zero-shot metrics were in: the resume needs start.pt's weights."""
    run = ws.copy_of_done()
    (run / "results.json").unlink()
    zero = json.loads((run / "zero_shot.json").read_text())
    del zero["metrics"]
    (run / "zero_shot.json").write_text(json.dumps(zero))
    start = run / "checkpoints" / "start.pt"
    start.write_bytes(start.read_bytes()[: 200])
    return Call(ws.finetune_args(run), [str(start), "unreadable start checkpoint", "--restart"], run, out_absent=False)


def _curvature_call(ws, run: Path, needles: list[str]) -> Call:
    out = ws.fresh("curv")
    return Call(["curvature", "--run", str(run), "--data", str(ws.train), "--n-structures", "1", "--k", "1",
                 "--out", str(out)], needles, out)


def curvature_truncated_checkpoint(ws):
    run = ws.copy_of_done()
    final = run / "checkpoints" / "final.pt"
    final.write_bytes(final.read_bytes()[: 200])
    return _curvature_call(ws, run, [str(final), "unreadable checkpoint"])


def curvature_checkpoint_without_optimizer(ws):
    import torch

    run = ws.copy_of_done()
    final = run / "checkpoints" / "final.pt"
    data = torch.load(final, weights_only=False)
    del data["optimizer"]
    torch.save(data, final)
    return _curvature_call(ws, run, [str(final), "field 'optimizer'", "lacks"])


def corrupt_config_yaml(ws):
    run = ws.copy_of_done()
    (run / "config.yaml").write_text("config_hash: [unclosed\n  - : :\n")
    return Call(ws.finetune_args(run), [str(run / "config.yaml")], None, out_absent=False)


def truncated_results_finetune(ws):
    run = ws.copy_of_done()
    res = run / "results.json"
    res.write_text(res.read_text()[:100])
    return Call(ws.finetune_args(run), [str(res), "JSON"], None, out_absent=False)


def different_config_same_out(ws):
    run = ws.copy_of_done()
    return Call(ws.finetune_args(run, "--lr", "0.5"), [str(run), "different config", "--restart"], None, out_absent=False)


def locked_run_folder(ws):
    run = ws.fresh("locked")
    run.mkdir()
    return Call(ws.finetune_args(run), [str(run), "pid"], None, out_absent=False)


# ---------------------------------------------------------------- evaluate
def evaluate_nan_positions(ws):
    frames = ws.frames()
    frames[0].positions[1] = np.nan
    path = ws.write("eval_nan.xyz", frames)
    out = ws.fresh("evalnan") / "e.json"
    return Call(["evaluate", "--model", "chgnet", "--test", f"t={path}", "--out", str(out)],
                [str(path), "positions"], out.parent)


def evaluate_missing_forces_key(ws):
    out = ws.fresh("evalkey") / "e.json"
    return Call(["evaluate", "--model", "chgnet", "--test", f"t={ws.test}", "--forces-key", "F_ref", "--out", str(out)],
                [str(ws.test), "F_ref"], out.parent)


def evaluate_out_is_directory(ws):
    out = ws.fresh("evaldir")
    out.mkdir()
    return Call(["evaluate", "--model", "chgnet", "--test", f"t={ws.test}", "--out", str(out)],
                [str(out), "directory"], None, out_absent=False)


# ---------------------------------------------------------------- finetune: strategies
def strategy_unknown_group(ws):
    out = ws.fresh("strat_group")
    return Call(ws.finetune_args(out, "--strategy", "freeze:embed"), ["strategy", "'chgnet'", "'embed'", "embedding"], out)


def strategy_freezes_everything(ws):
    out = ws.fresh("strat_all")
    every = "freeze:embedding,radial,interaction,bond,angle,readout"
    return Call(ws.finetune_args(out, "--strategy", every), ["strategy", "freezes every trainable parameter"], out)


def lr_factors_unknown_group(ws):
    out = ws.fresh("factors_group")
    return Call(ws.finetune_args(out, "--lr-factors", "head=2"), ["lr_factors", "'head'", "readout"], out)


def lr_factors_with_lbfgs(ws):
    out = ws.fresh("factors_lbfgs")
    return Call(ws.finetune_args(out, "--optimizer", "lbfgs", "--lr-factors", "readout=2"),
                ["lr_factors", "'lbfgs'", "single parameter group"], out)


# ---------------------------------------------------------------- study
def _study_call(ws, name, optimizers, needles, **extra):
    study = ws.study(f"{name}.yaml", optimizers, **extra)
    out = ws.fresh(name)
    return Call(["run", str(study), "--out", str(out)], needles, out)


def study_unknown_optimizer(ws):
    return _study_call(ws, "s_unknown", {"adamw": {"lrs": [1e-3]}, "adamx": {"lrs": [1e-3]}}, ["optimizers.adamx", "adamx"])


def study_misspelled_kwarg(ws):
    return _study_call(ws, "s_kwarg", {"adamw": {"lrs": [1e-3]}, "sgd": {"lrs": [1e-3], "kwargs": {"momentun": 0.9}}},
                       ["optimizers.sgd", "momentun"])


def study_missing_file(ws):
    study = ws.study("s_missing.yaml", {"adamw": {"lrs": [1e-3]}})
    missing = ws.root / "nope.xyz"
    study.write_text(study.read_text().replace(str(ws.test), str(missing)))
    out = ws.fresh("s_missing")
    return Call(["run", str(study), "--out", str(out)], [str(missing), "not found"], out)


def study_nan_file(ws):
    frames = ws.frames()
    frames[1].calc.results["energy"] = float("nan")
    path = ws.write("nan_energy.xyz", frames)
    study = ws.study("s_nan.yaml", {"adamw": {"lrs": [1e-3]}})
    study.write_text(study.read_text().replace(str(ws.train), str(path)))
    out = ws.fresh("s_nan")
    return Call(["run", str(study), "--out", str(out)], [str(path), "energy"], out)


def study_named_key_missing(ws):
    study = ws.study("s_key.yaml", {"adamw": {"lrs": [1e-3]}})
    study.write_text(study.read_text().replace("tests:", "keys: {forces: DFT_forces}\n  tests:"))
    out = ws.fresh("s_key")
    return Call(["run", str(study), "--out", str(out)], [str(ws.train), "DFT_forces"], out)


def study_bad_seed(ws):
    return _study_call(ws, "s_seed", {"adamw": {"lrs": [1e-3]}}, ["seeds"], seeds=[-1])


def study_user_optimizer_raises(ws):
    return _study_call(ws, "s_uopt", {"adamw": {"lrs": [1e-3]}, "user_optim_mod:RaisesInInit": {"lrs": [1e-3]}},
                       ["optimizers.user_optim_mod:RaisesInInit", "refuses"])


def study_yaml_error(ws):
    study = ws.study("s_yaml.yaml", {"adamw": {"lrs": [1e-3]}})
    study.write_text(study.read_text() + "seeds: [0\nmax_steps: 3\n")
    out = ws.fresh("s_yaml")
    return Call(["run", str(study), "--out", str(out)], [str(study), "YAML", "line"], out)


def study_unknown_strategy_group(ws):
    return _study_call(ws, "s_strategy", {"adamw": {"lrs": [1e-3]}}, ["strategies.1", "'embed'", "embedding"],
                       strategies=["full", "freeze:embed"])


def study_locked_folder(ws):
    c = _study_call(ws, "s_locked", {"adamw": {"lrs": [1e-3]}}, ["pid", "in use"])
    c.out.mkdir()
    c.out_absent = False
    return c


def study_no_trial_completed(ws):
    c = _study_call(ws, "s_none", {"user_optim_mod:RaisesInStep": {"lrs": [1e-3]}}, ["no trial", "completed"])
    c.code, c.out_absent = 1, False
    return c


CASES = [overlap, tiny_cell, nan_positions, inf_positions, partial_pbc, periodic_without_cell, missing_forces_key, missing_stress_key,
         train_is_directory, seed_negative, seed_too_large, device_cuda_on_cpu, device_invalid, chgnet_not_a_model,
         sevennet_not_a_model, user_optimizer_raises_in_init, user_optimizer_raises_in_step, optimizer_module_missing,
         optimizer_not_a_class, yaml_error_one_line, replaced_train_file, corrupt_checkpoint, corrupt_start_checkpoint,
         curvature_truncated_checkpoint, curvature_checkpoint_without_optimizer, corrupt_config_yaml,
         truncated_results_finetune, different_config_same_out, locked_run_folder, evaluate_nan_positions,
         evaluate_missing_forces_key, evaluate_out_is_directory, strategy_unknown_group, strategy_freezes_everything,
         lr_factors_unknown_group, lr_factors_with_lbfgs, study_unknown_optimizer, study_misspelled_kwarg,
         study_missing_file, study_nan_file, study_named_key_missing, study_bad_seed, study_user_optimizer_raises,
         study_yaml_error, study_unknown_strategy_group, study_locked_folder, study_no_trial_completed]


def run_case(case, ws, capsys=None) -> tuple[int, list[str], Call]:
    """Build the case's input and call `optbench` in-process: (exit code, stderr lines, call)."""
    import contextlib
    import io

    from optbench.cli import main

    call = case(ws)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        if case in (locked_run_folder, study_locked_folder):
            from optbench.lock import folder_lock

            with folder_lock(call.argv[call.argv.index("--out") + 1]):
                code = main(call.argv)
        else:
            code = main(call.argv)
    return code, err.getvalue().strip().splitlines(), call


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input(case, ws):
    code, err, call = run_case(case, ws)
    lines = [ln for ln in err if not ln.startswith("note:")]
    assert code == call.code, err
    assert len(lines) == 1 and lines[0].startswith("optbench: error:"), err
    assert "Traceback" not in "\n".join(err)
    for needle in call.needles:
        assert needle in lines[0], (needle, lines[0])
    if call.out is not None:
        if call.out_absent:
            assert not call.out.exists(), f"{call.out} left behind"
        elif call.argv[0] != "run":
            assert not (call.out / "results.json").exists()


def test_debug_shows_the_traceback(ws):
    import contextlib
    import io

    from optbench.cli import main

    call = user_optimizer_raises_in_step(ws)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["--debug", *call.argv]) == 1
    assert "Traceback" in err.getvalue() and "boom in step" in err.getvalue()
