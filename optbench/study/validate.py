"""Everything a study needs, checked before its first trial: a bad input is exit 2, not N crashes.

Optimizers are built with their kwargs on a toy parameter and take one step; every data file
is read with its keys and passes the structural checks; every backbone loads, knows every
element of every dataset and has the parameter groups that the strategies and LR factors name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from optbench.errors import InputError
from optbench.study.config import StudyConfig
from optbench.study.trials import ResolvedDataset


def check_optimizers(study: StudyConfig) -> None:
    """Build each optimizer of the grid on a toy parameter and step it once."""
    from optbench.optim import build_optimizer

    wd = study.finetune.get("weight_decay")
    for name, grid in study.optimizers.items():
        for lr in grid.lrs or [1e-3]:  # lr_grid: auto places the grid later; the kwargs are checked now
            toy = torch.nn.Parameter(torch.ones(3))

            def closure(toy=toy):
                toy.grad = None
                loss = (toy**2).sum()
                loss.backward()
                return loss

            try:
                opt = build_optimizer(name, [toy], lr, wd, **grid.kwargs)
                opt.step(closure)
            except InputError as err:
                raise InputError(err.message, field=f"optimizers.{name}") from None
            except Exception as err:  # a user optimizer that raises in step()
                raise InputError(f"optimizer '{name}' failed a step on a toy parameter ({type(err).__name__}: {err})",
                                 field=f"optimizers.{name}") from None


def dataset_files(ds: ResolvedDataset) -> dict[str, Path]:
    """Label -> file of every data file of a dataset."""
    files = {f"{ds.name}.train": ds.train, **{f"{ds.name}.tests.{n}": p for n, p in ds.tests.items()}}
    if ds.valid is not None:
        files[f"{ds.name}.valid"] = ds.valid
    return files


def load_backbones(study: StudyConfig) -> dict:
    """Backbone spec -> the loaded pretrained backbone, for every backbone of the study."""
    from optbench.backbones import load_backbone

    return {name: load_backbone(name) for name in study.backbones}


def check_strategies(study: StudyConfig, backbones: dict | None = None) -> None:
    """Every strategy and the LR factors against every backbone's parameter groups, and every
    optimizer against the factors (L-BFGS takes one group)."""
    from optbench.strategies import check_strategy

    for bb in (backbones or load_backbones(study)).values():
        for i, strategy in enumerate(study.strategies):
            for opt in study.optimizers:
                try:
                    check_strategy(bb, strategy, study.lr_factors, opt)
                except InputError as err:
                    field = f"strategies.{i}" if err.field == "strategy" else err.field
                    raise InputError(err.message, field=field) from None


def check_data(study: StudyConfig, datasets: dict[str, ResolvedDataset], backbones: dict | None = None) -> None:
    """Read every file with its keys; structures, label keys and elements of every backbone."""
    from optbench.data.io import LabelKeys, read_frames
    from optbench.sanity import check_structures, label_coverage

    specs = {d.name: d for d in study.datasets}
    backbones = backbones or load_backbones(study)
    cutoff = max((getattr(b, "cutoff", None) or getattr(b, "r_max", None) or 6.0) for b in backbones.values())
    for ds in datasets.values():
        keys = {k: ds.keys.get(k, k) for k in ("energy", "forces", "stress", "virial")}
        named = set(specs[ds.name].keys) & set(keys)
        sets = {}
        for label, path in dataset_files(ds).items():
            frames = read_frames(path, LabelKeys(**keys))
            check_structures(frames, path, cutoff)
            for bb in backbones.values():
                bb.check_elements({int(z) for f in frames for z in f.atoms.numbers}, path)
            sets[label] = (str(path), frames)
        label_coverage(sets, keys, named, required_in={f"{ds.name}.train", f"{ds.name}.valid"})


def check_property_settings(study: StudyConfig) -> None:
    """Each dataset's `property_settings` build their property object (names, types, ranges)."""
    from optbench.properties import get_property

    for i, ds in enumerate(study.datasets):
        for name, settings in ds.property_settings.items():
            try:
                get_property(name, settings)
            except InputError as err:
                raise InputError(err.message, field=f"datasets.{i}.property_settings.{name}"
                                 + (f".{err.field}" if err.field not in (None, "property", "settings") else "")) from None


def validate_study(study: StudyConfig, datasets: dict[str, ResolvedDataset]) -> None:
    """InputError on the first problem of any trial's inputs, before anything is written."""
    check_property_settings(study)
    check_optimizers(study)
    backbones = load_backbones(study)
    check_strategies(study, backbones)
    check_data(study, datasets, backbones)
