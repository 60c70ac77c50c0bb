"""Studies: datasets x backbones x optimizers x learning rates x seeds, fair and resumable."""

from optbench.study.config import StudyConfig, load_study
from optbench.study.runner import run_study

__all__ = ["StudyConfig", "load_study", "run_study"]
