"""A run folder's life: identity by content, lock, restart, stale temporaries, readable files.

Kept apart from the training loop so that `optbench.run` only calls `RunFolder.open` and friends;
the folder's file names live in `optbench.layout.RunDir`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from optbench.config import FinetuneConfig
from optbench.errors import InputError
from optbench.identity import check_same_inputs, fingerprint, model_file
from optbench.layout import RunDir
from optbench.lock import claimed_folder, remove_stale_temporaries
from optbench.sanity import check_structures, coverage_lines, label_coverage

RUN_ENTRIES = RunDir.ENTRIES  # what a run writes; --restart removes exactly these
KEEP = RunDir.KEEP  # a folder holding one of these is never removed after an error
HINT = "rerun with --restart to start over, or choose another --out"


def input_files(config: FinetuneConfig) -> dict[str, Path | None]:
    """Label -> file of every input that defines the numbers (data files and a model file)."""
    files: dict[str, Path | None] = {"train": config.train, "valid": config.valid}
    files.update({f"tests.{name}": path for name, path in config.tests.items()})
    files["model"] = model_file(config.model)
    if config.replay_file is not None:
        files["replay_file"] = config.replay_file
    return files


def check_inputs(config: FinetuneConfig, backbone, checks, valid_frames, named_keys: set[str] | None) -> dict:
    """Structural sanity of every set and the label keys; returns the partial label coverage."""
    from tqdm.auto import tqdm

    cutoff = getattr(backbone, "cutoff", None) or getattr(backbone, "r_max", None)
    for path, frames in checks:
        check_structures(frames, path, cutoff)
    keys = {"energy": config.energy_key, "forces": config.forces_key, "stress": config.stress_key,
            "virial": config.virial_key}
    if named_keys is None:
        defaults = FinetuneConfig.model_fields
        named_keys = {k for k in keys if keys[k] != defaults[f"{k}_key"].default}
    names = ["train", *(f"tests.{n}" for n in config.tests)]
    if valid_frames is not None:
        names.append("valid")
    sets = {name: (str(path), frames) for name, (path, frames) in zip(names, checks)}
    coverage = label_coverage(sets, keys, named_keys, required_in={"train", "valid"})
    for line in coverage_lines(coverage):
        tqdm.write(line)
    return coverage


class RunFolder:
    """The output folder of one run: `claimed()` locks it, `open()` checks what it already holds."""

    def __init__(self, out: Path, config: FinetuneConfig):
        self.out, self.config = Path(out), config
        self.dir = RunDir(self.out)
        self.inputs = fingerprint(input_files(config))

    def claimed(self):
        return claimed_folder(self.out, KEEP)

    def open(self, restart: bool) -> None:
        """With the lock held: drop stale temporaries, honour --restart, refuse changed content."""
        remove_stale_temporaries(self.out)
        if restart:
            for name in RUN_ENTRIES:
                path = self.out / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            return
        old = self.dir.config_record(HINT)
        if old is None:
            return
        if old.get("config_hash") != self.config.hash():
            raise InputError(f"this folder holds a run with a different config; {HINT}", file=self.out, field="out")
        check_same_inputs(old.get("inputs"), self.inputs, self.out, HINT)

    def load_checkpoint(self, path: Path, device: str) -> dict:
        """last.pt, with every key `checkpoint.resume` reads."""
        from optbench.io import torch_load

        return torch_load(path, device, required=("model_state", "optimizer_state", "train_state"), hint=HINT)

