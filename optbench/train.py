"""The old home of the fine-tuning run, kept so that every import of it keeps working.

The run now lives in `optbench.run`, one module a job (inputs, loop, schedule, checkpoint, refine,
results, finetune); the run folder's file names in `optbench.layout.RunDir`.
"""

from __future__ import annotations

from optbench.config import FinetuneConfig
from optbench.e0 import apply_e0, check_e0, describe_e0, fit_reference_energies, split_isolated
from optbench.layout import RunDir
from optbench.loss import FeaturizedSet, compute_loss
from optbench.run.checkpoint import TrainState
from optbench.run.finetune import FinetuneRun, finetune
from optbench.run.inputs import split as _split
from optbench.run.loop import TrainingLoop
from optbench.run.results import valid_loss as _valid_loss
from optbench.run.schedule import EMA, lr_lambda
from optbench.run_folder import RunFolder, check_inputs

RESULTS, METRICS, CONFIG, ZERO_SHOT, CKPT_DIR = RunDir.RESULTS, RunDir.METRICS, RunDir.CONFIG, RunDir.ZERO_SHOT, RunDir.CHECKPOINTS

__all__ = [
    "CKPT_DIR", "CONFIG", "EMA", "METRICS", "RESULTS", "ZERO_SHOT", "FeaturizedSet", "FinetuneConfig", "FinetuneRun",
    "RunFolder", "TrainState", "TrainingLoop", "apply_e0", "check_e0", "check_inputs", "compute_loss", "describe_e0",
    "finetune", "fit_reference_energies", "lr_lambda", "split_isolated", "_split", "_valid_loss",
]
