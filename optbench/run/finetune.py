"""`finetune(config)`: one fine-tuning run from its inputs to RUN_DIR/results.json.

Reads and checks every input before writing anything, refits the per-element reference energies,
trains with checkpoints (resumable after a kill), stops a diverging run cleanly, optionally refines
with L-BFGS, and writes the results. Each job is its own module of `optbench.run`.
"""

from __future__ import annotations

import time

import torch

from optbench.config import FinetuneConfig
from optbench.e0 import apply_e0, describe_e0
from optbench.featcache import remember_predictions
from optbench.io import write_json, write_yaml
from optbench.layout import RunDir
from optbench.optim import get_spec
from optbench.phases import Phases
from optbench.provenance import log, log_run_start, provenance, run_log
from optbench.run import checkpoint, results
from optbench.run.checkpoint import TrainState
from optbench.run.inputs import RunInputs, featurize
from optbench.run.loop import TrainingLoop
from optbench.run.refine import refine
from optbench.run.zero_shot import ZeroShot
from optbench.run_folder import RunFolder
from optbench.strategies import Strategy, prepare
from optbench.strategies.apply import lora_applied
from optbench.strategies.lora import describe_lora, merge_lora
from optbench.strategies.replay import ReplaySet
from optbench.threads import beside_by_default


class FinetuneRun:
    """One fine-tuning run: its config, checked inputs and folder; `run()` does the work."""

    def __init__(self, config: FinetuneConfig, named_keys: set[str] | None = None, beside: bool | None = None):
        """`beside`: whether the zero-shot evaluation may run beside the training (optbench.run.zero_shot);
        default `threads.beside_by_default` (on the CPU, where the CPUs have room for it)."""
        self.phases = Phases()  # results.json's phases_s: read, featurize, setup, evaluate, train, refine, total
        self.config = config
        self.beside = beside_by_default(config.device) if beside is None else beside
        self.dir = RunDir(config.out)
        self.spec = get_spec(config.optimizer)
        self.inputs = RunInputs.read(config, named_keys)  # reading, checks, model load
        self.backbone = self.inputs.backbone
        self.groups = prepare(self.backbone, config)  # the strategy, checked before the folder is claimed; param groups
        self.lora = lora_applied(self.backbone)  # LoRA adapters (seeded by config.seed), None without
        strategy = Strategy.parse(config.strategy)
        self.replay = ReplaySet.read(config, self.backbone) if strategy.replay_fraction else None
        self.folder = RunFolder(self.dir.path, config)
        self.phases.add("read", time.perf_counter() - self.phases.started)

    def prepare(self) -> TrainingLoop:
        """Split and featurize the sets, build the optimizer: the loop, ready for `step()` or `train()`."""
        t0 = time.perf_counter()
        torch.manual_seed(self.config.seed)
        sets = featurize(self.inputs, self.config)
        t1 = time.perf_counter()
        self.phases.add("featurize", t1 - t0)
        loop = TrainingLoop(self.config, self.backbone, sets, self.groups, self.spec.supports_schedule)
        self.phases.add("setup", time.perf_counter() - t1)  # optimizer (its first build imports torch._dynamo)
        return loop

    def run(self, restart: bool = False) -> dict:
        cfg, run = self.config, self.dir
        self.folder.open(restart)
        done = run.results()
        if done is not None and done.get("config_hash") == cfg.hash():
            log.info(f"{run.results_path} holds this run, finished: nothing to do")
            return run.results()
        loop = self.prepare()
        write_yaml(run.config_path, {**cfg.to_yaml_dict(), "inputs": self.folder.inputs})
        zero, state = self._start(loop)
        with self.phases("train"):  # the training loop with its validations and checkpoints
            state = loop.train(state, run)
        loop.deliverable_weights()
        refining = cfg.refine and not state.diverged
        # the final weights never change again: evaluated beside the refinement where a CPU is spare
        final = loop.evaluate_beside("final evaluation before the refinement") if refining and self.beside else None
        if final:
            log.info("L-BFGS refinement, with the final evaluation beside it on a spare CPU (OPTBENCH_BESIDE=0: before it)")
        with self.phases("evaluate"):
            metrics = {"zero_shot": zero.metrics(), "final": None if final else loop.evaluate()}
        if zero.beside_s is not None:
            self.phases.add("evaluate_beside_train", zero.beside_s)  # its own thread: not in the main clock
        checkpoint.save(loop, run, "final", state)
        refined = self._refine(loop, state, metrics) if refining else None
        if final:
            with self.phases("evaluate"):  # what is left of it once the refinement is done
                metrics["final"] = final.result()
            self.phases.add("evaluate_beside_refine", final.seconds)
        result = results.record(cfg, loop, state, zero.record, metrics, self.folder.inputs, self.inputs.label_coverage,
                                self.provenance)
        if refined:
            result["refine"] = refined
            result["wall_time_s"] += refined["wall_time_s"]
        result["metrics"] = metrics
        if self.lora:
            merge_lora(self.backbone)  # the deliverable: adapters folded into the native weights
            result["lora"] = self.lora
        if self.replay:
            result["replay"] = self.replay.record(cfg.batch_size)
        self.backbone.save(run.model_dir)
        result["phases_s"] = self.phases.as_dict()
        write_json(run.results_path, result)
        log.info(f"{result['status']} after {state.step} steps, {result['wall_time_s']:.1f} s wall time -> {run.results_path}")
        return result

    def _start(self, loop: TrainingLoop) -> tuple[ZeroShot, TrainState]:
        """(zero-shot record, loop state): read back when resuming, else the E0 refit, the zero-shot
        evaluation (started) and the start checkpoint."""
        cfg, run = self.config, self.dir
        if run.checkpoint("last").exists():
            with self.phases("evaluate"), remember_predictions():  # its metrics, when the kill came before them
                zero = ZeroShot.resumed(loop, run, self.beside)
            state = checkpoint.resume(loop, self.folder, run)
            self._log_start(loop, state.step)
        else:
            zero, state = self._fresh_start(loop), TrainState()
        if self.replay:  # labels of the start, read back on resume: the batches of an uninterrupted run
            self.replay.use_labels(zero.record.get("replay"))
            loop.replay = self.replay.mixer(loop.train_set, self.backbone, cfg)
        return zero, state

    def _fresh_start(self, loop: TrainingLoop) -> ZeroShot:
        cfg, run = self.config, self.dir
        self._log_start(loop, None)
        # the E0 refit's prediction pass and the zero-shot evaluation: the same in every run on these files
        with self.phases("evaluate"), remember_predictions():
            e0 = apply_e0(cfg.e0, self.backbone, loop.train_set, self.inputs.isolated_frames, cfg.train, cfg.eval_batch_size)
            log.info(describe_e0(e0))
            zero = ZeroShot({"e0": e0}, run).start(loop, self.beside)
            if self.replay:  # pseudo-labels by the model after the E0 setting (optbench.strategies.replay)
                zero.record["replay"] = self.replay.label(self.backbone, cfg.eval_batch_size)
        zero.write()  # without its metrics while they are computed beside the training
        run.start_metrics()
        checkpoint.save(loop, run, "start", optimizer_state=False)
        return zero

    def _refine(self, loop: TrainingLoop, state: TrainState, metrics: dict) -> dict:
        """L-BFGS refinement, its evaluation (into `metrics`) and checkpoint: refine's record with its wall time."""
        t0 = time.perf_counter()
        apart = [what for what, on in (("lr_factors", bool(self.config.lr_factors)), ("replay", bool(self.replay))) if on]
        if apart:  # the refinement has one step size (its line search's) and the training structures only
            log.info(f"L-BFGS refinement: {' and '.join(apart)} do not apply to it (training structures, one step size; "
                     "frozen groups stay frozen)")
        refined = refine(loop)
        refined["wall_time_s"] = time.perf_counter() - t0
        self.phases.add("refine", refined["wall_time_s"])
        with self.phases("evaluate"):
            metrics["refined"] = loop.evaluate()
        checkpoint.save(loop, self.dir, "refined", state)
        return refined

    def _log_start(self, loop: TrainingLoop, resumed_step: int | None) -> None:
        self.provenance = provenance(self.config.device, [self.backbone.name])
        log_run_start(self.config, self.provenance, len(loop.train_set), len(loop.valid) if loop.valid else 0,
                      loop.steps_per_epoch, loop.total_steps, resumed_step)
        if self.lora:
            log.info(describe_lora(self.lora))
        if self.replay:
            log.info(self.replay.describe(self.config.batch_size))


def finetune(config: FinetuneConfig | dict, *, restart: bool = False, named_keys: set[str] | None = None,
             beside: bool | None = None) -> dict:
    """Fine-tune `config.model` and return the results (also written to RUN_DIR/results.json).

    Every input is read and checked before the run folder is created; the folder is locked
    while the run works in it. `restart` discards a previous run there; `named_keys` are the
    label kinds whose key the user named (default: those not at their default name); `beside`: whether the
    zero-shot evaluation may run beside the training (default: where a spare CPU is; optbench.run.zero_shot).
    """
    if isinstance(config, dict):
        config = FinetuneConfig.validated(config)
    run = FinetuneRun(config, named_keys, beside)  # reads and checks every input before the folder is claimed
    with run.folder.claimed(), run_log(config.out):
        return run.run(restart)
