"""The fine-tuning run, one module a job.

    inputs      read and check every input, split off validation, featurize
    loop        the training loop (`TrainingLoop.step()`, `train()`), validation, early stopping
    schedule    LR schedules and the EMA of the weights
    checkpoint  save / resume (checkpoints/<tag>.pt)
    refine      L-BFGS refinement
    results     results.json's record, the validation loss
    finetune    `finetune(config)`: the run from inputs to results

Reference energies (E0) are fitted in optbench.e0; the run folder's file names live in optbench.layout.
"""

from optbench.run.checkpoint import TrainState
from optbench.run.finetune import FinetuneRun, finetune
from optbench.run.loop import TrainingLoop
from optbench.run.schedule import EMA, lr_lambda

__all__ = ["EMA", "FinetuneRun", "TrainState", "TrainingLoop", "finetune", "lr_lambda"]
