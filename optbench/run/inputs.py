"""A run's inputs: every file read and checked before anything is written, then split and featurized."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optbench.backbones import load_backbone
from optbench.config import FinetuneConfig
from optbench.data.io import Frame, LabelKeys, read_frames
from optbench.e0 import check_e0, split_isolated
from optbench.errors import InputError
from optbench.evaluate import tag_of
from optbench.loss import FeaturizedSet
from optbench.run_folder import check_inputs


@dataclass
class RunInputs:
    """The frames of every set, the loaded backbone and the label coverage of one run's config.

    IsolatedAtom frames are E0 data, never trained on, validated on or tested (optbench.e0).
    """

    train_frames: list[Frame]
    isolated_frames: list[Frame]
    valid_frames: list[Frame] | None
    test_frames: dict[str, list[Frame]]
    backbone: object
    label_coverage: dict

    @classmethod
    def read(cls, config: FinetuneConfig, named_keys: set[str] | None = None) -> RunInputs:
        """Read every input and check it (elements, structures, labels, E0 data): InputError naming the file."""
        keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key, config.virial_key)
        train, isolated = split_isolated(read_frames(config.train, keys), config.train)
        valid = split_isolated(read_frames(config.valid, keys), config.valid)[0] if config.valid else None
        tests = {name: split_isolated(read_frames(path, keys), path)[0] for name, path in config.tests.items()}
        check_e0(config.e0, train, isolated, config.train)
        backbone = load_backbone(config.model, config.device)
        checks = [(config.train, train), *((config.tests[n], f) for n, f in tests.items())]
        if valid is not None:
            checks.append((config.valid, valid))
        for path, frames in checks:
            backbone.check_elements({int(z) for f in frames for z in f.atoms.numbers}, path)
        coverage = check_inputs(config, backbone, checks, valid, named_keys)
        if config.loss_weights.stress > 0 and any(f.stress is not None and not f.atoms.pbc.all() for f in train):
            raise InputError("stress labels on a non-periodic structure", file=config.train, field=config.stress_key)
        return cls(train, isolated, valid, tests, backbone, coverage)


@dataclass
class RunSets:
    """The featurized sets of a run: train, valid (None without one) and every set by name, with tags."""

    train: FeaturizedSet
    valid: FeaturizedSet | None
    sets: dict[str, FeaturizedSet]
    tags: dict[str, str]


def split(frames: list[Frame], fraction: float, seed: int) -> tuple[list[Frame], list[Frame]]:
    """(train, valid): a seeded random `fraction` of the frames held out, at least one when asked for."""
    n_valid = int(round(fraction * len(frames))) if len(frames) > 1 else 0
    if fraction > 0 and len(frames) > 1:
        n_valid = max(n_valid, 1)
    perm = np.random.default_rng([seed, 7919]).permutation(len(frames))
    valid = sorted(perm[:n_valid].tolist())
    keep = sorted(perm[n_valid:].tolist())
    return [frames[i] for i in keep], [frames[i] for i in valid]


def featurize(inputs: RunInputs, config: FinetuneConfig) -> RunSets:
    """Split off the validation set (unless given) and featurize every set."""
    if inputs.valid_frames is not None:
        train, valid = inputs.train_frames, inputs.valid_frames
    else:
        train, valid = split(inputs.train_frames, config.valid_fraction, config.seed)
    graphs = _train_graphs(inputs)  # the whole training file once, whatever the split (featcache)
    backbone = inputs.backbone
    train_set = FeaturizedSet(train, backbone, "train", [graphs[id(f)] for f in train])
    sets, tags = {"train": train_set}, {"train": "train"}
    valid_set = None
    if valid:
        pre = [graphs[id(f)] for f in valid] if inputs.valid_frames is None else None
        sets["valid"] = valid_set = FeaturizedSet(valid, backbone, "valid", pre)
        tags["valid"] = "valid"
    for name, frames in inputs.test_frames.items():
        sets[name] = FeaturizedSet(frames, backbone, name)
        tags[name] = config.test_tags.get(name, tag_of(name))
    return RunSets(train_set, valid_set, sets, tags)


def _train_graphs(inputs: RunInputs) -> dict[int, object]:
    """Graph of each training frame by id(frame), featurized (or read from the cache) as one file."""
    from optbench.featcache import featurize_frames

    frames = inputs.train_frames
    return dict(zip(map(id, frames), featurize_frames(frames, inputs.backbone), strict=True))
