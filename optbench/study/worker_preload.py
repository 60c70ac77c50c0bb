"""What every study worker imports before its first job, imported once by the fork server that the
workers fork from (`optbench.study.executors.worker_context`): Python's start, torch, optbench's run
and analyses, and CHGNet (the default backbone), about 10 s of one core on the 2-core machine, are
then paid once, beside the study's own checks, rather than by each worker as it starts."""

import torch  # noqa: F401

import optbench.run  # noqa: F401
import optbench.study.analyses  # noqa: F401
from optbench.backbones.chgnet import chgnet_class

chgnet_class()
