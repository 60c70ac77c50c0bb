"""Expand a study into trials: one FinetuneConfig per dataset x backbone x optimizer x LR x seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

from optbench.config import FinetuneConfig
from optbench.data.manifest import load_manifest, manifest_splits, suite_path
from optbench.errors import InputError
from optbench.evaluate import tag_of
from optbench.layout import StudyDir
from optbench.study.config import DatasetSpec, StudyConfig

TRIALS_DIR = StudyDir.TRIALS


@dataclass
class ResolvedDataset:
    """A dataset with concrete files; `folder` and `manifest` when it came from a dataset folder."""

    name: str
    regime: str
    train: Path
    tests: dict[str, Path]
    tags: dict[str, str]
    valid: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None
    manifest: dict = field(default_factory=dict)
    properties: list[str] | str = "auto"
    property_settings: dict = field(default_factory=dict)


def resolve_dataset(spec: DatasetSpec) -> ResolvedDataset:
    """Concrete files of a dataset spec (suite regime, manifest folder, or explicit files)."""
    if spec.train is not None:
        tags = {n: spec.tags.get(n, tag_of(n)) for n in spec.tests}
        return ResolvedDataset(spec.name, spec.regime or "custom", spec.train, dict(spec.tests), tags, spec.valid,
                               dict(spec.keys), properties=spec.properties, property_settings=dict(spec.property_settings))
    folder = Path(suite_path(spec.suite) if spec.suite is not None else spec.path)
    if not (folder / "manifest.json").is_file():
        raise InputError("dataset folder has no manifest.json", file=folder, field=f"datasets.{spec.name}")
    manifest = load_manifest(folder)
    parts = manifest_splits(folder, manifest)
    train, valid = parts.train, parts.valid
    tests = {split: path for split, (_, path) in parts.tests.items()}
    tags = {split: tag for split, (tag, _) in parts.tests.items()}
    keys = {**manifest.get("keys", {}), **spec.keys}
    return ResolvedDataset(spec.name, spec.regime or manifest.get("regime", spec.suite or "custom"), train, tests, tags,
                           valid, keys, folder, manifest, spec.properties, dict(spec.property_settings))


@dataclass
class Trial:
    dataset: str
    regime: str
    backbone: str
    optimizer: str
    lr: float
    seed: int
    config: FinetuneConfig
    strategy: str = "full"

    @property
    def key(self) -> str:
        return self.config.hash()

    @property
    def arm(self) -> tuple[str, ...]:
        """(dataset, backbone, optimizer[, strategy]): the trials among which one LR is selected."""
        base = (self.dataset, self.backbone, self.optimizer)
        return base if self.strategy == "full" else (*base, self.strategy)

    def row(self) -> dict:
        return {"trial": self.key, "dataset": self.dataset, "regime": self.regime, "backbone": self.backbone,
                "optimizer": self.optimizer, "strategy": self.strategy, "lr": self.lr, "seed": self.seed}


def expand(study: StudyConfig, out: Path, datasets: dict[str, ResolvedDataset],
           grids: dict[tuple[str, str, str], list[float]] | None = None) -> list[Trial]:
    """Every trial of the study, each with its run folder out/trials/<config hash>; `grids`
    ((dataset, backbone, optimizer) -> LRs, from `lr_grid: auto`) replaces the given grids. Every
    strategy of an optimizer gets the same LR grid and seeds (the same budget)."""
    trials = []
    for ds_spec in study.datasets:
        ds = datasets[ds_spec.name]
        for backbone, (opt, grid), strategy in product(study.backbones, study.optimizers.items(), study.strategies):
            for lr, seed in product(grids[ds.name, backbone, opt] if grids else grid.lrs, study.seeds):
                data = {
                    "model": backbone, "train": ds.train, "valid": ds.valid, "tests": ds.tests, "test_tags": ds.tags,
                    "optimizer": opt, "optimizer_kwargs": grid.kwargs, "lr": lr, "seed": seed,
                    "batch_size": study.batch_size, "max_steps": study.max_steps,
                    "max_time_s": study.max_time_s, "loss_weights": study.loss_weights.model_dump(),
                    "eval_every": study.eval_every, "valid_fraction": study.valid_fraction,
                    "refine": "lbfgs" if study.refine else None, "refine_steps": study.refine_steps,
                    "strategy": strategy, "lr_factors": study.lr_factors,
                    **{f"{k}_key": v for k, v in ds.keys.items() if k in ("energy", "forces", "stress", "virial")},
                    **study.finetune,
                }
                cfg = FinetuneConfig.validated(data, f"study dataset '{ds.name}'")
                cfg = cfg.model_copy(update={"out": StudyDir(out).trial(cfg.hash()).path})
                trials.append(Trial(ds.name, ds.regime, backbone, opt, lr, seed, cfg, strategy))
    return trials
