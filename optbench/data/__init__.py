"""Data: labelled extxyz frames in, the built-in benchmark suite, the public-dataset registry."""

from optbench.data.io import Frame, LabelKeys, read_frames, shared_data_dir
from optbench.data.manifest import (
    DatasetFiles,
    dataset_files,
    finetune_inputs,
    load_manifest,
    sha256_file,
    suite_path,
)

__all__ = ["DatasetFiles", "Frame", "LabelKeys", "dataset_files", "finetune_inputs", "load_manifest", "read_frames",
           "sha256_file", "shared_data_dir", "suite_path"]
