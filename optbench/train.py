"""The fine-tuning loop: one loop for every backbone and every optimizer.

`finetune(config)` reads and checks every input before writing anything, refits the
per-element reference energies, trains with checkpoints (resumable after a kill), stops a
diverging run cleanly, optionally refines with L-BFGS, and writes RUN_DIR/results.json.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from optbench.backbones import load_backbone
from optbench.config import FinetuneConfig
from optbench.data.io import Frame, LabelKeys, read_frames
from optbench.e0 import apply_e0, check_e0, describe_e0, fit_reference_energies, split_isolated  # noqa: F401 (fit_reference_energies: old import path)
from optbench.errors import InputError
from optbench.evaluate import evaluate_sets, tag_of
from optbench.featcache import remember_predictions
from optbench.io import read_json, torch_save, write_json, write_yaml
from optbench.loss import FeaturizedSet, compute_loss, loss_from_metrics
from optbench.optim import build_optimizer, get_spec, set_mode
from optbench.phases import Phases
from optbench.provenance import log, log_run_start, provenance, run_log
from optbench.rollback import Rollback
from optbench.run_folder import RunFolder, check_inputs

RESULTS, METRICS, CONFIG, ZERO_SHOT, CKPT_DIR = "results.json", "metrics.jsonl", "config.yaml", "zero_shot.json", "checkpoints"


# ---------------------------------------------------------------- helpers
def lr_lambda(schedule: str, warmup: int, total: int):
    """Multiplier of the base LR at step t for each schedule name."""
    total = max(total, 1)

    def f(t: int) -> float:
        if schedule in ("warmup", "warmup_cosine") and warmup > 0 and t < warmup:
            return (t + 1) / warmup
        if schedule in ("cosine", "warmup_cosine"):
            start = warmup if schedule == "warmup_cosine" else 0
            frac = min(max(t - start, 0) / max(total - start, 1), 1.0)
            return 0.5 * (1 + math.cos(math.pi * frac))
        return 1.0

    return f


class EMA:
    """Exponential moving average of the trainable weights."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float):
        self.params, self.decay = params, decay
        self.shadow = [p.detach().clone() for p in params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange model weights and EMA weights (call twice to restore)."""
        for p, s in zip(self.params, self.shadow):
            tmp = p.detach().clone()
            p.copy_(s)
            s.copy_(tmp)


@dataclass
class TrainState:
    step: int = 0
    elapsed_s: float = 0.0
    metrics_lines: int = 0
    first_loss: float | None = None
    best_valid: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0
    stopped_early: bool = False
    diverged: bool = False


def _valid_loss(block: dict, config: FinetuneConfig) -> float:
    """The training loss (`optbench.loss.weighted_loss`) over the whole validation set."""
    return loss_from_metrics(block, config.loss_weights)


def _split(frames: list[Frame], fraction: float, seed: int) -> tuple[list[Frame], list[Frame]]:
    n_valid = int(round(fraction * len(frames))) if len(frames) > 1 else 0
    if fraction > 0 and len(frames) > 1:
        n_valid = max(n_valid, 1)
    perm = np.random.default_rng([seed, 7919]).permutation(len(frames))
    valid = sorted(perm[:n_valid].tolist())
    keep = sorted(perm[n_valid:].tolist())
    return [frames[i] for i in keep], [frames[i] for i in valid]


def _append_jsonl(path: Path, record: dict) -> None:
    import json

    from optbench.io import to_jsonable

    with open(path, "a") as fh:
        fh.write(json.dumps(to_jsonable(record)) + "\n")


def _truncate_lines(path: Path, n: int) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)[:n]
    path.write_text("".join(lines))


# ---------------------------------------------------------------- the run
class FinetuneRun:
    """State of one fine-tuning run; `finetune()` is the entry point."""

    def __init__(self, config: FinetuneConfig, named_keys: set[str] | None = None):
        self.phases = Phases()  # results.json's phases_s: read, featurize, setup, evaluate, train, refine, total
        self.config = config
        self.out = Path(config.out)
        self.spec = get_spec(config.optimizer)
        keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key, config.virial_key)
        # IsolatedAtom frames are E0 data, never trained on, validated on or tested (optbench.e0)
        self.train_frames, self.isolated_frames = split_isolated(read_frames(config.train, keys), config.train)
        self.valid_frames = split_isolated(read_frames(config.valid, keys), config.valid)[0] if config.valid else None
        self.test_frames = {name: split_isolated(read_frames(path, keys), path)[0] for name, path in config.tests.items()}
        check_e0(config.e0, self.train_frames, self.isolated_frames, config.train)
        self.backbone = load_backbone(config.model, config.device)
        checks = [(config.train, self.train_frames), *((config.tests[n], f) for n, f in self.test_frames.items())]
        if self.valid_frames is not None:
            checks.append((config.valid, self.valid_frames))
        for path, frames in checks:
            self.backbone.check_elements({int(z) for f in frames for z in f.atoms.numbers}, path)
        self.label_coverage = check_inputs(config, self.backbone, checks, self.valid_frames, named_keys)
        if config.loss_weights.stress > 0 and any(f.stress is not None and not f.atoms.pbc.all() for f in self.train_frames):
            raise InputError("stress labels on a non-periodic structure", file=config.train, field=config.stress_key)
        self.folder = RunFolder(self.out, config)
        self.phases.add("read", time.perf_counter() - self.phases.started)  # reading, checks, model load

    # -- set-up shared by fresh and resumed runs
    def _prepare(self) -> None:
        cfg = self.config
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        if self.valid_frames is not None:
            train, valid = self.train_frames, self.valid_frames
        else:
            train, valid = _split(self.train_frames, cfg.valid_fraction, cfg.seed)
        graphs = self._train_graphs()  # the whole training file once, whatever the split (featcache)
        self.train = FeaturizedSet(train, self.backbone, "train", [graphs[id(f)] for f in train])
        self.sets = {"train": self.train}
        self.tags = {"train": "train"}
        if valid:
            pre = [graphs[id(f)] for f in valid] if self.valid_frames is None else None
            self.sets["valid"] = self.valid = FeaturizedSet(valid, self.backbone, "valid", pre)
            self.tags["valid"] = "valid"
        else:
            self.valid = None
        for name, frames in self.test_frames.items():
            self.sets[name] = FeaturizedSet(frames, self.backbone, name)
            self.tags[name] = cfg.test_tags.get(name, tag_of(name))
        t1 = time.perf_counter()
        self.phases.add("featurize", t1 - t0)
        self.params = self.backbone.parameters()
        self.steps_per_epoch = math.ceil(len(self.train) / cfg.batch_size)
        limits = [s for s in (cfg.max_steps, cfg.epochs and cfg.epochs * self.steps_per_epoch) if s is not None]
        self.total_steps = min(limits) if limits else self.steps_per_epoch
        self.optimizer = build_optimizer(cfg.optimizer, self.params, cfg.lr, cfg.weight_decay, **cfg.optimizer_kwargs)
        self.scheduler = None
        if self.spec.supports_schedule:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lr_lambda(cfg.schedule, cfg.warmup_steps, self.total_steps)
            )
        self.ema = EMA(self.params, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.best_state = None
        self.phases.add("setup", time.perf_counter() - t1)  # optimizer (its first build imports torch._dynamo)

    def _train_graphs(self) -> dict[int, object]:
        """Graph of each training frame by id(frame), featurized (or read from the cache) as one file."""
        from optbench.featcache import featurize_frames

        return dict(zip(map(id, self.train_frames), featurize_frames(self.train_frames, self.backbone), strict=True))

    def _evaluate(self, names=None) -> dict:
        names = list(self.sets) if names is None else names
        return evaluate_sets(self.backbone, {n: self.sets[n] for n in names}, self.config.eval_batch_size, self.tags)

    # -- checkpoints
    def _ckpt(self, tag: str, state: TrainState | None = None, optimizer_state=True) -> None:
        data = {
            "model_state": self.backbone.model.state_dict(),
            "optimizer": self.config.optimizer if tag != "refined" else "lbfgs",
            "optimizer_state": self.optimizer.state_dict() if optimizer_state else None,
            "step": state.step if state else 0,
            "config_hash": self.config.hash(),
        }
        if tag == "last":
            data.update(
                scheduler_state=self.scheduler.state_dict() if self.scheduler else None,
                ema=self.ema.shadow if self.ema else None,
                best_state=self.best_state,
                train_state=asdict(state),
                torch_rng=torch.get_rng_state(),
            )
        torch_save(self.out / CKPT_DIR / f"{tag}.pt", data)

    def _resume(self) -> TrainState:
        ckpt = self.folder.load_checkpoint(self.out / CKPT_DIR / "last.pt", self.config.device)
        self.backbone.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        if self.scheduler and ckpt["scheduler_state"]:
            self.scheduler.load_state_dict(ckpt["scheduler_state"])
        if self.ema and ckpt["ema"] is not None:
            for s, v in zip(self.ema.shadow, ckpt["ema"]):
                s.copy_(v)
        self.best_state = ckpt["best_state"]
        torch.set_rng_state(ckpt["torch_rng"])
        state = TrainState(**ckpt["train_state"])
        _truncate_lines(self.out / METRICS, state.metrics_lines)
        return state

    # -- one training step
    def _step(self, batch) -> tuple[float, dict, float]:
        clip = self.config.clip_grad or math.inf
        info = {}

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = compute_loss(self.backbone, batch, self.config.loss_weights)
            loss.backward(inputs=self.params)  # no gradients for positions or other leaves
            info["parts"] = parts
            info["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, clip))
            return loss

        try:
            loss = self.optimizer.step(closure)
        except Exception as err:  # the optimizer's own code (a user optimizer, usually)
            from optbench.errors import OptimizerError

            raise OptimizerError(f"optimizer '{self.config.optimizer}' raised in a step "
                                 f"({type(err).__name__}: {' '.join(str(err).split())})") from err
        return float(loss), info["parts"], info["grad_norm"]

    def _train(self, state: TrainState) -> TrainState:
        cfg = self.config
        metrics_path = self.out / METRICS
        t0 = time.perf_counter() - state.elapsed_s
        bar = tqdm(total=self.total_steps, initial=state.step, desc=f"{cfg.optimizer} lr={cfg.lr:g}", unit="step", disable=None, leave=False)
        order, order_epoch = None, -1
        self.backbone.model.train()
        rollback = Rollback(self.params, self.optimizer, self.scheduler, self.ema)
        while state.step < self.total_steps:
            epoch, k = divmod(state.step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.train)), epoch
            batch = self.train.batch(order[k * cfg.batch_size : (k + 1) * cfg.batch_size])
            rollback.before_step(state.step)
            loss, parts, gnorm = self._step(batch)
            if state.first_loss is None:
                state.first_loss = loss
            bad = not (math.isfinite(loss) and math.isfinite(gnorm))
            if bad or loss > cfg.divergence_factor * max(state.first_loss, 1e-8):
                state.diverged, self.diverged_at = True, state.step + 1
                state.step = rollback.restore_last_good()
                log.warning(f"diverged at step {self.diverged_at} (loss {loss:.3g}); restored the last good state "
                            f"(after step {state.step}: weights and optimizer state)")
                break
            lr = self.optimizer.param_groups[0]["lr"]
            if self.scheduler:
                self.scheduler.step()
            if self.ema:
                self.ema.update()
            state.step += 1
            state.elapsed_s = time.perf_counter() - t0
            record = {"step": state.step, "epoch": epoch, "loss": loss, **{f"loss_{k}": float(v) for k, v in parts.items()},
                      "lr": lr, "grad_norm": gnorm, "elapsed_s": state.elapsed_s}
            _append_jsonl(metrics_path, record)
            state.metrics_lines += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}")
            due = state.step % cfg.eval_every == 0 or state.step == self.total_steps
            if self.valid is not None and due and self._validate(state, metrics_path):
                state.stopped_early = True
            if state.step == self.total_steps // 2:
                self._ckpt("mid", state)
            if state.step % cfg.checkpoint_every == 0 or state.step == self.total_steps or state.stopped_early:
                state.elapsed_s = time.perf_counter() - t0
                self._ckpt("last", state)
            if cfg.max_time_s is not None and state.elapsed_s >= cfg.max_time_s:
                state.stopped_early = True
                self._ckpt("last", state)
            if state.stopped_early:
                break
        bar.close()
        state.elapsed_s = time.perf_counter() - t0
        return state

    def _eval_weights(self, on: bool) -> None:
        set_mode(self.optimizer, train=not on)
        if self.ema:
            self.ema.swap()

    def _deliverable_weights(self) -> None:
        """Put the weights to report in the model: the eval weights (ScheduleFree's x / the EMA
        average) now, or, under early stopping, exactly the eval weights that scored best.

        The best state was saved *as* eval weights, so it is loaded after switching to eval mode,
        never transformed a second time.
        """
        self._eval_weights(True)
        if self.config.patience and self.best_state is not None:
            self.backbone.model.load_state_dict(self.best_state)

    def _validate(self, state: TrainState, metrics_path: Path) -> bool:
        """Evaluate on the validation split; True when early stopping says stop."""
        self._eval_weights(True)
        block = self._evaluate(["valid"])["valid"]
        vloss = _valid_loss(block, self.config)
        if vloss < state.best_valid:
            state.best_valid, state.best_step, state.evals_since_best = vloss, state.step, 0
            if self.config.patience:
                self.best_state = {k: v.detach().clone() for k, v in self.backbone.model.state_dict().items()}
        else:
            state.evals_since_best += 1
        self._eval_weights(False)
        _append_jsonl(metrics_path, {"step": state.step, "valid_loss": vloss, "valid_energy_mae": block["energy_mae"],
                                     "valid_forces_mae": block["forces_mae"], "elapsed_s": state.elapsed_s})
        state.metrics_lines += 1
        return bool(self.config.patience and state.evals_since_best >= self.config.patience)

    # -- L-BFGS refinement
    def _refine(self) -> dict:
        cfg = self.config
        n = min(cfg.refine_structures, len(self.train))
        idx = sorted(np.random.default_rng([cfg.seed, 104729]).permutation(len(self.train))[:n].tolist())
        chunks = [idx[i : i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]
        batches = [self.train.batch(c) for c in chunks]
        self.optimizer = build_optimizer("lbfgs", self.params, 1.0)
        before = [p.detach().clone() for p in self.params]

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for b, c in zip(batches, chunks):
                loss, _ = compute_loss(self.backbone, b, cfg.loss_weights)
                (loss * len(c) / n).backward(inputs=self.params)
                total += float(loss) * len(c) / n
            return torch.tensor(total)

        self.backbone.model.train()
        losses = []
        for _ in tqdm(range(cfg.refine_steps), desc="L-BFGS refine", unit="step", disable=None, leave=False):
            loss = float(self.optimizer.step(closure))
            losses.append(loss)
            if not math.isfinite(loss) or not all(torch.isfinite(p).all() for p in self.params):
                with torch.no_grad():
                    for p, s in zip(self.params, before):
                        p.copy_(s)
                return {"status": "diverged", "losses": losses, "n_structures": n}
        final_loss = float(closure())
        return {"status": "completed", "losses": [*losses, final_loss], "n_structures": n}

    # -- entry
    def run(self, restart: bool = False) -> dict:
        cfg = self.config
        done = self.out / RESULTS
        self.folder.open(restart)
        if done.exists() and read_json(done).get("config_hash") == cfg.hash():
            log.info(f"{done} holds this run, finished: nothing to do")
            return read_json(done)
        self._prepare()
        write_yaml(self.out / CONFIG, {**cfg.to_yaml_dict(), "inputs": self.folder.inputs})
        zs_path = self.out / ZERO_SHOT
        resumed = (self.out / CKPT_DIR / "last.pt").exists()
        if resumed:
            zero = read_json(zs_path)
            state = self._resume()
            self._log_start(state.step)
        else:
            self._log_start(None)
            # the E0 refit's prediction pass and the zero-shot evaluation: the same in every run on these files
            with self.phases("evaluate"), remember_predictions():
                e0 = apply_e0(cfg.e0, self.backbone, self.train, self.isolated_frames, cfg.train, cfg.eval_batch_size)
                log.info(describe_e0(e0))
                zero = {"e0": e0, "metrics": self._evaluate()}
            write_json(zs_path, zero)
            (self.out / METRICS).write_text("")
            self._ckpt("start", optimizer_state=False)
            state = TrainState()
        with self.phases("train"):  # the training loop with its validations and checkpoints
            state = self._train(state)
        self._deliverable_weights()
        with self.phases("evaluate"):
            metrics = {"zero_shot": zero["metrics"], "final": self._evaluate()}
        self._ckpt("final", state)
        result = {
            "status": "diverged" if state.diverged else "completed",
            "optimizer": cfg.optimizer, "lr": cfg.lr, "seed": cfg.seed, "model": cfg.model,
            "steps": state.step, "total_steps": self.total_steps, "epochs_completed": state.step / self.steps_per_epoch,
            "stopped_early": state.stopped_early, "best_valid_step": state.best_step,
            "wall_time_s": state.elapsed_s, "config_hash": cfg.hash(), "e0": zero["e0"],
            "valid_loss": _valid_loss(metrics["final"]["valid"], cfg) if "valid" in metrics["final"] else None,
            "inputs": self.folder.inputs, "label_coverage": self.label_coverage,
            "provenance": self.provenance,
        }
        if state.diverged:
            result["diverged_at_step"] = self.diverged_at
        if cfg.refine and not state.diverged:
            t0 = time.perf_counter()
            refine = self._refine()
            refine["wall_time_s"] = time.perf_counter() - t0
            self.phases.add("refine", refine["wall_time_s"])
            result["refine"] = refine
            result["wall_time_s"] += refine["wall_time_s"]
            with self.phases("evaluate"):
                metrics["refined"] = self._evaluate()
            self._ckpt("refined", state)
        result["metrics"] = metrics
        self.backbone.save(self.out / "model")
        result["phases_s"] = self.phases.as_dict()
        write_json(done, result)
        log.info(f"{result['status']} after {state.step} steps, {result['wall_time_s']:.1f} s wall time -> {done}")
        return result

    def _log_start(self, resumed_step: int | None) -> None:
        self.provenance = provenance(self.config.device, [self.backbone.name])
        log_run_start(self.config, self.provenance, len(self.train), len(self.valid) if self.valid else 0,
                      self.steps_per_epoch, self.total_steps, resumed_step)


def finetune(config: FinetuneConfig | dict, *, restart: bool = False, named_keys: set[str] | None = None) -> dict:
    """Fine-tune `config.model` and return the results (also written to RUN_DIR/results.json).

    Every input is read and checked before the run folder is created; the folder is locked
    while the run works in it. `restart` discards a previous run there; `named_keys` are the
    label kinds whose key the user named (default: those not at their default name).
    """
    if isinstance(config, dict):
        config = FinetuneConfig.validated(config)
    run = FinetuneRun(config, named_keys)  # reads and checks every input before the folder is claimed
    with run.folder.claimed(), run_log(config.out):
        return run.run(restart)
