"""The training loop: one loop for every backbone and every optimizer.

`TrainingLoop.step(batch)` is one optimizer step (the closure, gradient clipping); `train()` runs
steps in seeded epoch order with validation, early stopping, checkpoints and a clean stop on
divergence (the last good weights and optimizer state restored), and the optimizer's recipe
(optbench.run.recipe: LR on a plateau, stage two) where its entry has one.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from optbench.config import FinetuneConfig
from optbench.evaluate import evaluate_sets
from optbench.layout import RunDir
from optbench.loss import LossWeights, compute_loss, loss_from_metrics
from optbench.optim import build_optimizer, set_mode
from optbench.optim.recipe import recipe_for
from optbench.provenance import log
from optbench.rollback import Rollback
from optbench.run import checkpoint
from optbench.run.checkpoint import TrainState
from optbench.run.inputs import RunSets
from optbench.run.recipe import RecipeRun
from optbench.run.schedule import EMA, scheduler
from optbench.strategies import flat_parameters
from optbench.strategies.replay import training_per_batch
from optbench.threads import Beside


class TrainingLoop:
    """The model, its featurized sets, the optimizer with its schedule and EMA, and the loop over them."""

    def __init__(self, config: FinetuneConfig, backbone, sets: RunSets, groups: list[dict], supports_schedule: bool = True):
        """`groups`: the optimizer's param groups from `strategies.prepare(backbone, config)` (the strategy
        applied: frozen groups out, per-group LR factors)."""
        self.config, self.backbone = config, backbone
        self.train_set, self.valid, self.sets, self.tags = sets.train, sets.valid, sets.sets, sets.tags
        self.params = flat_parameters(groups)  # optimizer order: state index i is params[i]
        self.per_batch = training_per_batch(config)  # training structures a batch; the rest are replay ones
        self.steps_per_epoch = math.ceil(len(self.train_set) / self.per_batch)
        self.replay = None  # ReplayMixer of a replay strategy, set once the replay set is labelled (FinetuneRun)
        limits = [s for s in (config.max_steps, config.epochs and config.epochs * self.steps_per_epoch) if s is not None]
        self.total_steps = min(limits) if limits else self.steps_per_epoch
        self.optimizer = build_optimizer(config.optimizer, groups, config.lr, config.weight_decay, **config.optimizer_kwargs)
        self.scheduler = None
        if supports_schedule:
            self.scheduler = scheduler(self.optimizer, config.schedule, config.warmup_steps, self.total_steps)
        recipe = recipe_for(config.optimizer, config.recipe)
        self.recipe = None if recipe is None else RecipeRun(
            config.optimizer, recipe, self.optimizer, config.loss_weights, self.total_steps, self.steps_per_epoch,
            self.valid is not None)
        decay = config.ema_decay or (recipe.ema_decay if recipe else 0.0)  # the run's EMA, else the recipe's
        self.ema = EMA(self.params, decay, warmup=bool(recipe and recipe.ema_warmup)) if decay > 0 else None
        self.huber_delta = config.huber_delta if config.loss == "huber" else None
        self.best_state = None  # under early stopping: the eval weights that scored best
        self.diverged_at: int | None = None

    @property
    def loss_weights(self) -> LossWeights:
        """The loss weights of the current stage (the run's, or the recipe's stage two)."""
        return self.recipe.weights if self.recipe else self.config.loss_weights

    def evaluate(self, names=None, backbone=None) -> dict:
        """Metrics of the named sets (default: all) with the weights now in the model (or in `backbone`,
        a copy: `evaluate_beside`)."""
        names = list(self.sets) if names is None else names
        return evaluate_sets(backbone or self.backbone, {n: self.sets[n] for n in names}, self.config.eval_batch_size,
                             self.tags)

    def evaluate_beside(self, otherwise: str) -> Beside | None:
        """`evaluate()` of every set with the weights now in the model, on a copy of it in a thread
        (`threads.Beside`: the same numbers, the thread builds its own graphs); None, and a log line
        saying `otherwise` and why, when the model cannot be copied."""
        try:
            model_copy = copy.deepcopy(self.backbone)
        except Exception as err:  # an adapter whose modules cannot be copied
            log.info(f"{otherwise} (the model cannot be copied: {type(err).__name__})")
            return None
        return Beside(self.evaluate, None, model_copy, name="optbench-evaluate")

    def step(self, batch) -> tuple[float, dict, float]:
        """One optimizer step on `batch`: (loss, loss parts, gradient norm before clipping)."""
        clip = self.config.clip_grad or math.inf
        info = {}

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = compute_loss(self.backbone, batch, self.loss_weights, self.huber_delta)
            loss.backward(inputs=self.params)  # no gradients for positions or other leaves
            info["parts"] = parts
            # read back after the step: a float() here would wait for the device mid-step
            info["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.params, clip).detach()
            return loss

        try:
            loss = self.optimizer.step(closure)
        except Exception as err:  # the optimizer's own code (a user optimizer, usually)
            from optbench.errors import OptimizerError

            raise OptimizerError(f"optimizer '{self.config.optimizer}' raised in a step "
                                 f"({type(err).__name__}: {' '.join(str(err).split())})") from err
        return float(loss), info["parts"], float(info["grad_norm"])

    def train(self, state: TrainState, run: RunDir) -> TrainState:
        """Steps from `state` to the end (or early stop / divergence); metrics and checkpoints go to `run`."""
        cfg = self.config
        t0 = time.perf_counter() - state.elapsed_s
        bar = tqdm(total=self.total_steps, initial=state.step, desc=f"{cfg.optimizer} lr={cfg.lr:g}", unit="step", disable=None, leave=False)
        order, order_epoch = None, -1
        self.backbone.model.train()
        rollback = Rollback(self.params, self.optimizer, self.scheduler, self.ema)
        while state.step < self.total_steps:
            epoch, k = divmod(state.step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.train_set)), epoch
            idx = order[k * self.per_batch : (k + 1) * self.per_batch]
            batch = self.replay.batch(idx, state.step) if self.replay else self.train_set.batch(idx)
            rollback.before_step(state.step)
            loss, parts, gnorm = self.step(batch)
            if state.first_loss is None:
                state.first_loss = loss
            bad = not (math.isfinite(loss) and math.isfinite(gnorm))
            if bad or loss > cfg.divergence_factor * max(state.first_loss, 1e-8):
                state.diverged, self.diverged_at = True, state.step + 1
                state.step = rollback.restore_last_good()
                log.warning(f"diverged at step {self.diverged_at} (loss {loss:.3g}); restored the last good state "
                            f"(after step {state.step}: weights and optimizer state)")
                break
            first = self.optimizer.param_groups[0]
            lr = first["lr"] / first.get("lr_factor", 1.0)  # the base LR (groups carry base x factor)
            if self.scheduler:
                self.scheduler.step()
            if self.ema:
                self.ema.update()
            if self.recipe:
                self.recipe.observe(loss)
            state.step += 1
            state.elapsed_s = time.perf_counter() - t0
            run.append_metrics({"step": state.step, "epoch": epoch, "loss": loss, **{f"loss_{k}": float(v) for k, v in parts.items()},
                                "lr": lr, "grad_norm": gnorm, "elapsed_s": state.elapsed_s})
            state.metrics_lines += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}")
            if self._after_step(state, run, t0):
                break
        bar.close()
        state.elapsed_s = time.perf_counter() - t0
        return state

    def _after_step(self, state: TrainState, run: RunDir, t0: float) -> bool:
        """Validation, early stopping, checkpoints and the time limit after a step; True: stop."""
        cfg = self.config
        due = state.step % cfg.eval_every == 0 or state.step == self.total_steps
        if self.valid is not None and due and self.validate(state, run):
            state.stopped_early = True
        if self.recipe:
            if due and self.valid is None:
                self.recipe.plateau_step(state.step, None)
            if self.recipe.switch(state.step):  # a new loss: the best validation so far starts afresh (MACE)
                state.best_valid, state.evals_since_best = math.inf, 0
        if state.step == self.total_steps // 2:
            checkpoint.save(self, run, "mid", state)
        if state.step % cfg.checkpoint_every == 0 or state.step == self.total_steps or state.stopped_early:
            state.elapsed_s = time.perf_counter() - t0
            checkpoint.save(self, run, "last", state)
        if cfg.max_time_s is not None and state.elapsed_s >= cfg.max_time_s:
            state.stopped_early = True
            checkpoint.save(self, run, "last", state)
        return state.stopped_early

    def eval_weights(self, on: bool) -> None:
        """Switch to the weights to evaluate (ScheduleFree's x, the EMA average) and back."""
        set_mode(self.optimizer, train=not on)
        if self.ema:
            self.ema.swap()

    def deliverable_weights(self) -> None:
        """Put the weights to report in the model: the eval weights (ScheduleFree's x / the EMA
        average) now, or, under early stopping, exactly the eval weights that scored best.

        The best state was saved *as* eval weights, so it is loaded after switching to eval mode,
        never transformed a second time.
        """
        self.eval_weights(True)
        if self.config.patience and self.best_state is not None:
            self.backbone.model.load_state_dict(self.best_state)

    def validate(self, state: TrainState, run: RunDir) -> bool:
        """Evaluate on the validation split; True when early stopping says stop."""
        self.eval_weights(True)
        block = self.evaluate(["valid"])["valid"]
        vloss = loss_from_metrics(block, self.loss_weights)
        if vloss < state.best_valid:
            state.best_valid, state.best_step, state.evals_since_best = vloss, state.step, 0
            if self.config.patience:
                self.best_state = {k: v.detach().clone() for k, v in self.backbone.model.state_dict().items()}
        else:
            state.evals_since_best += 1
        self.eval_weights(False)
        if self.recipe:
            self.recipe.plateau_step(state.step, vloss)
        run.append_metrics({"step": state.step, "valid_loss": vloss, "valid_energy_mae": block["energy_mae"],
                            "valid_forces_mae": block["forces_mae"], "elapsed_s": state.elapsed_s})
        state.metrics_lines += 1
        return bool(self.config.patience and state.evals_since_best >= self.config.patience)
