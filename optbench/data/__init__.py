"""Data: labelled extxyz frames in, the built-in benchmark suite, the public-dataset registry."""

from optbench.data.io import Frame, LabelKeys, read_frames

__all__ = ["Frame", "LabelKeys", "read_frames"]
