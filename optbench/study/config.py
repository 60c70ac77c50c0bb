"""Typed study configuration: datasets x backbones x optimizers (LR grid each) x seeds.

Loaded from YAML; a validation error names the field and its line in the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from optbench.errors import InputError
from optbench.loss import LossWeights
from optbench.regimes import REGIMES


class DatasetSpec(BaseModel):
    """One dataset: a built-in suite regime, a dataset folder with manifest.json, or explicit files."""

    model_config = ConfigDict(extra="forbid")
    name: str
    suite: str | None = None  # a regime of optbench.regimes
    path: Path | None = None
    train: Path | None = None
    valid: Path | None = None
    tests: dict[str, Path] = Field(default_factory=dict)
    tags: dict[str, Literal["ID", "OOD"]] = Field(default_factory=dict)
    regime: str | None = None
    keys: dict[str, str] = Field(default_factory=dict)
    properties: list[str] | Literal["auto"] = "auto"
    # per property, settings that replace the reference's for the models (e.g. {"md": {"nvt_steps": 2000}}):
    # a shorter run gives larger error bars, and observables it cannot afford come back null with the reason
    property_settings: dict[str, dict] = Field(default_factory=dict)

    @field_validator("suite")
    @classmethod
    def _known_regime(cls, suite: str | None) -> str | None:
        if suite is not None and suite not in REGIMES:
            raise ValueError(f"unknown regime '{suite}' (choose from {', '.join(REGIMES)})")
        return suite

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        given = [x is not None for x in (self.suite, self.path, self.train)]
        if sum(given) != 1:
            raise ValueError("give exactly one of suite, path (dataset folder) or train (+ tests)")
        return self


class OptimizerGrid(BaseModel):
    """One optimizer's LR grid (`lrs`; leave it out with `lr_grid: auto`) and its options."""

    model_config = ConfigDict(extra="forbid")
    lrs: list[float] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("lrs")
    @classmethod
    def _positive(cls, lrs: list[float]) -> list[float]:
        if any(lr <= 0 for lr in lrs):
            raise ValueError("learning rates must be > 0")
        return lrs


class CurvatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoints: list[Literal["start", "mid", "final", "refined"]] = Field(default_factory=lambda: ["final", "refined"])
    n_structures: int = Field(8, ge=1)
    k: int = Field(5, ge=1)
    n_iter: int | None = Field(None, ge=2)  # Lanczos steps (default 2k + 10)
    n_probes: int | None = Field(None, ge=1)  # Hutchinson probes (default k)
    n_slq: int = Field(3, ge=1)  # stochastic Lanczos quadrature vectors


def _canonical_strategy(value: str) -> str:
    """The canonical form of one strategy string (optbench.strategies.Strategy)."""
    from optbench.strategies import Strategy

    try:
        return str(Strategy.parse(value))
    except InputError as err:
        raise ValueError(err.message) from None


class StudyConfig(BaseModel):
    """A whole optimizer comparison with an equal tuning budget per optimizer."""

    model_config = ConfigDict(extra="forbid")
    name: str = "study"
    datasets: list[DatasetSpec] = Field(min_length=1)
    backbones: list[str] = Field(default_factory=lambda: ["chgnet"], min_length=1)
    optimizers: dict[str, OptimizerGrid] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("seeds")
    @classmethod
    def _seed_range(cls, seeds: list[int]) -> list[int]:
        bad = [s for s in seeds if not 0 <= s < 2**32]
        if bad:
            raise ValueError(f"seeds must be in [0, 2^32), got {bad}")
        return seeds
    max_steps: int | None = Field(100, ge=1)
    max_time_s: float | None = Field(None, gt=0)
    batch_size: int = Field(4, ge=1)
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    eval_every: int = Field(10, ge=1)
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    refine: bool = True
    refine_steps: int = Field(10, ge=1)
    # true: properties of each selected trial's delivered model (refined when refine is on); a list of
    # checkpoints, e.g. [final, refined]: of each, so the L-BFGS stage's effect on the physics is measured
    properties: bool | list[Literal["final", "refined"]] = True
    curvature: CurvatureSpec | None = Field(default_factory=CurvatureSpec)
    forgetting: bool = True
    reference_optimizer: str = "adamw"
    lr_grid: Literal["given", "auto"] = "given"  # auto: an LR range test per optimizer places its grid
    lr_grid_size: int = Field(4, ge=1)  # LRs per optimizer with lr_grid: auto
    lr_range_steps: int = Field(40, ge=5)  # steps of each LR range test
    threads_per_trial: int = Field(1, ge=1)
    gpus_per_trial: float = Field(1.0, gt=0)  # Ray: GPUs asked for a trial whose device is CUDA (0.5: two share one)
    finetune: dict[str, Any] = Field(default_factory=dict)
    # fine-tuning strategies crossed with the optimizers (optbench.strategies), one LR-factor map for all trials
    strategies: list[Annotated[str, AfterValidator(_canonical_strategy)]] = Field(
        default_factory=lambda: ["full"], min_length=1)
    lr_factors: dict[str, float] = Field(default_factory=dict)

    @field_validator("strategies")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"strategies must be distinct, got {values}")
        return values

    @field_validator("lr_factors")
    @classmethod
    def _factors(cls, value: dict[str, float]) -> dict[str, float]:
        from optbench.config import positive_factors

        return positive_factors(value)

    @model_validator(mode="after")
    def _fair(self) -> StudyConfig:
        sizes = {name: len(grid.lrs) for name, grid in self.optimizers.items()}
        if self.lr_grid == "auto":
            given = [name for name, n in sizes.items() if n]
            if given:
                raise ValueError(f"lr_grid: auto places every grid itself; remove the lrs of {given}")
            if any(name.lower() == "lbfgs" for name in self.optimizers):
                raise ValueError("lr_grid: auto needs first-order optimizers (an LR sweep means nothing to L-BFGS's line search)")
        elif min(sizes.values()) == 0:
            raise ValueError(f"give lrs for every optimizer (or lr_grid: auto), missing for {[n for n, k in sizes.items() if not k]}")
        if len(set(sizes.values())) > 1:
            raise ValueError(f"unequal tuning budget: every optimizer needs the same number of learning rates, got {sizes}")
        if isinstance(self.properties, list) and "refined" in self.properties and not self.refine:
            raise ValueError("properties at the 'refined' checkpoint need refine: true")
        if self.max_steps is None and self.max_time_s is None:
            raise ValueError("give a step budget (max_steps) or a wall-time budget (max_time_s)")
        for key, where in (("strategy", "`strategies: [...]` (a study axis)"), ("lr_factors", "`lr_factors:` of the study")):
            if key in self.finetune:
                raise ValueError(f"set {where}, not finetune.{key}")
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        return self

    def hash(self) -> str:
        data = self.model_dump(mode="json")
        for key, default in _NEW_DEFAULTS.items():  # fields added later enter only when set: old studies keep their hash
            if data.get(key) == default:
                data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


_NEW_DEFAULTS = {"strategies": ["full"], "lr_factors": {}}


def _line_map(text: str) -> dict[tuple, int]:
    """YAML path (keys and list indices) -> 1-based line number."""
    lines: dict[tuple, int] = {}

    def walk(node, path):
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*path, key.value)] = key.start_mark.line + 1
                walk(value, (*path, key.value))
                lines[(*path, key.value)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _validate(data: dict, source: str, lines: dict[tuple, int] | None = None) -> StudyConfig:
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        field = ".".join(str(p) for p in loc) or None
        line = None
        if lines:
            for n in range(len(loc), -1, -1):
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
        where = f"{source}:{line}" if line else source
        raise InputError(first["msg"].removeprefix("Value error, "), file=where, field=field) from None


def load_study(path: str | Path | None = None, preset: str | None = None) -> StudyConfig:
    """A study from a YAML file, or a built-in preset ('quick' when neither is given)."""
    if path is None:
        from optbench.study.presets import preset as get_preset

        return _validate(get_preset(preset or "quick"), f"preset '{preset or 'quick'}'")
    path = Path(path)
    if not path.is_file():
        raise InputError("study file not found", file=path)
    text = path.read_text()
    try:
        data = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as err:
        from optbench.config import yaml_problem

        raise InputError(f"not valid YAML ({yaml_problem(err)})", file=path) from None
    if not isinstance(data, dict):
        raise InputError("expected a mapping at the top level", file=path)
    base = path.parent
    for ds in data.get("datasets") or []:
        if isinstance(ds, dict):  # relative paths are relative to the study file
            for key in ("path", "train", "valid"):
                if isinstance(ds.get(key), str) and not Path(ds[key]).is_absolute():
                    ds[key] = str(base / ds[key])
            if isinstance(ds.get("tests"), dict):
                ds["tests"] = {k: (str(base / v) if isinstance(v, str) and not Path(v).is_absolute() else v) for k, v in ds["tests"].items()}
    return _validate(data, str(path), lines)
