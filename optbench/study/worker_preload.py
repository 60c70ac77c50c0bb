"""What every study worker imports before its first job, imported once by the fork server that the
workers fork from (`optbench.study.executors.worker_context`): Python's start, torch, optbench's run
and analyses, and CHGNet (the default backbone), 1.1 s of a quiet core on the 2-core machine (13 s at
load average 11), are then paid once, beside the study's own checks, rather than by each worker as it
starts (bench/worker_start.py)."""

import torch  # noqa: F401

import optbench.run  # noqa: F401
import optbench.study.analyses  # noqa: F401
from optbench.backbones.chgnet import chgnet_class

chgnet_class()
