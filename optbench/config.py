"""Typed run configuration: loaded from YAML and/or flags, validated, hashed for identity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from optbench.errors import InputError
from optbench.loss import LossWeights


def _resolved(path: str | Path) -> str:
    return str(Path(path).resolve())


def _replays(strategy: str) -> bool:
    """Whether a strategy string holds `replay:F`."""
    from optbench.strategies.spec import Strategy

    return bool(Strategy.parse(strategy).replay_fraction)


def _resolved_model(spec: str) -> str:
    """A model spec with its file or folder path resolved (`mace:rel/x.model` -> `mace:/abs/x.model`)."""
    if Path(spec).exists():
        return _resolved(spec)
    head, sep, rest = spec.partition(":")
    if sep and rest and Path(rest.split("@")[0]).exists():
        return f"{head}:{_resolved(rest)}"
    return spec


def _check_device(device: str) -> str:
    """A device torch knows and this machine has (cuda only where torch sees a GPU)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device '{device}' (cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' asked for but this torch sees no CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device '{device}' does not exist ({torch.cuda.device_count()} GPU(s))")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device '{device}' is not supported (cpu, cuda, cuda:N, mps)")
    return device


def yaml_problem(err: Exception) -> str:
    """A YAML parser error in one line: the problem and its line."""
    problem = getattr(err, "problem", None) or str(err).split("\n")[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


def positive_factors(value: dict[str, float]) -> dict[str, float]:
    """Per-group LR factors, each > 0 (a pydantic validator's body: ValueError otherwise)."""
    bad = {g: f for g, f in value.items() if not f > 0}
    if bad:
        raise ValueError(f"LR factors must be > 0, got {bad}")
    return value


_NEW_DEFAULTS = {"strategy": "full", "lr_factors": {}, "replay_file": None, "loss": "mse", "huber_delta": 0.01, "recipe": {}}


class FinetuneConfig(BaseModel):
    """One fine-tuning run. Energies eV, forces eV/Å, stress eV/Å^3 in the data files."""

    model_config = ConfigDict(extra="forbid")

    model: str = "chgnet"
    train: Path
    valid: Path | None = None
    tests: dict[str, Path] = Field(default_factory=dict)
    test_tags: dict[str, Literal["ID", "OOD"]] = Field(default_factory=dict)
    out: Path = Path("runs/run")
    optimizer: str = "adamw"
    optimizer_kwargs: dict[str, Any] = Field(default_factory=dict)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    batch_size: int = Field(4, ge=1)
    max_steps: int | None = Field(300, ge=0)
    epochs: int | None = Field(None, ge=1)
    max_time_s: float | None = Field(None, gt=0)
    seed: int = Field(0, ge=0, lt=2**32)
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    virial_key: str = "virial"
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    schedule: Literal["constant", "cosine", "warmup", "warmup_cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    clip_grad: float = Field(10.0, ge=0)
    ema_decay: float = Field(0.0, ge=0, lt=1)
    valid_fraction: float = Field(0.1, ge=0, lt=1)
    patience: int | None = Field(None, ge=1)
    eval_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    divergence_factor: float = Field(1e4, gt=1)
    e0: str | dict[str, float] = "refit"  # refit|keep|average|isolated or {element: eV}; see optbench.e0
    refine: Literal["lbfgs"] | None = None
    refine_steps: int = Field(20, ge=1)
    refine_structures: int = Field(64, ge=1)
    eval_batch_size: int = Field(16, ge=1)
    device: str = "cpu"
    # fine-tuning strategy (optbench.strategies): what is trained and what is kept
    strategy: str = "full"
    lr_factors: dict[str, float] = Field(default_factory=dict)  # parameter group -> LR factor
    replay_file: Path | None = None  # labelled replay structures (default: pseudo-labelled probe set)
    loss: Literal["mse", "huber"] = "mse"  # per-term loss (optbench.loss); validation always reports the MSE loss
    huber_delta: float = Field(0.01, gt=0)  # eV/atom, eV/Å, eV/Å^3: MACE's --huber_delta default
    recipe: dict[str, Any] = Field(default_factory=dict)  # overrides of the optimizer's recipe (optbench.optim.recipe)
    _notes: list[str] = PrivateAttr(default_factory=list)  # how a MACE-style config was read, for the log

    @field_validator("tests")
    @classmethod
    def _names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if name in ("train", "valid") or not name:
                raise ValueError(f"test-set name '{name}' is reserved")
        return value

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        from optbench.strategies import Strategy

        try:
            return str(Strategy.parse(value))
        except InputError as err:
            raise ValueError(err.message) from None

    @field_validator("lr_factors")
    @classmethod
    def _factors(cls, value: dict[str, float]) -> dict[str, float]:
        return positive_factors(value)

    @field_validator("recipe")
    @classmethod
    def _recipe(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from optbench.optim.recipe import recipe_for

        try:
            recipe_for(str(info.data.get("optimizer", "")), value)
        except InputError as err:
            where = err.field.removeprefix("recipe.") if err.field not in (None, "recipe") else None
            raise ValueError(f"{where}: {err.message}" if where else err.message) from None
        return value

    @model_validator(mode="after")
    def _recipe_schedule(self) -> FinetuneConfig:
        from optbench.optim.recipe import recipe_for

        if (self.schedule != "constant" or self.warmup_steps) and recipe_for(self.optimizer) is not None:
            raise ValueError(f"optimizer '{self.optimizer}' brings its own LR schedule (ReduceLROnPlateau and "
                             "stage two); leave schedule constant and warmup_steps 0")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return _check_device(value)

    @field_validator("e0", mode="before")
    @classmethod
    def _e0(cls, value):
        from optbench.e0 import parse_e0

        return parse_e0(value)

    @field_validator("loss_weights", mode="before")
    @classmethod
    def _weights(cls, value):
        if isinstance(value, dict):
            unknown = set(value) - {"energy", "forces", "stress"}
            if unknown:
                raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; use energy, forces, stress")
        return value

    # ---- construction
    @classmethod
    def from_sources(cls, yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> FinetuneConfig:
        """Config from an optional YAML file with command-line overrides (None values ignored)."""
        from optbench.mace_config import from_mace

        data: dict[str, Any] = {}
        source, notes = "command line", []
        if yaml_path:
            source = str(yaml_path)
            path = Path(yaml_path)
            if not path.is_file():
                raise InputError("config file not found", file=path)
            try:
                loaded = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as err:
                raise InputError(f"not valid YAML ({yaml_problem(err)})", file=path) from None
            if not isinstance(loaded, dict):
                raise InputError("expected a mapping at the top level", file=path)
            loaded, notes = from_mace(loaded, source)
            data.update(loaded)
        flags, cli_notes = from_mace({k: v for k, v in (overrides or {}).items() if v is not None}, "command line", cli=True)
        for key, value in flags.items():
            if key in ("loss_weights", "recipe") and isinstance(data.get(key), dict):
                value = {**data[key], **value}
            data[key] = value
        config = cls.validated(data, source)
        config._notes = [*notes, *cli_notes]
        return config

    @classmethod
    def validated(cls, data: dict[str, Any], source: str = "config") -> FinetuneConfig:
        if "train" not in data:
            raise InputError("a training set is required (--train FILE, or train: / train_file: in the YAML)", file=source, field="train")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or None
            raise InputError(first["msg"].removeprefix("Value error, "), file=source, field=field) from None

    # ---- identity
    def identity(self) -> dict[str, Any]:
        """The settings that define the numbers (not where or on what device they are written).

        File paths enter resolved, so a relative and an absolute path to one file are one run;
        the files' content is checked separately (optbench.identity).
        """
        data = self.model_dump(mode="json", exclude={"out", "device", "checkpoint_every"})
        data["train"] = _resolved(self.train)
        data["valid"] = None if self.valid is None else _resolved(self.valid)
        data["tests"] = {name: _resolved(path) for name, path in self.tests.items()}
        data["model"] = _resolved_model(self.model)
        for key, default in _NEW_DEFAULTS.items():  # settings added later enter only when set, so old runs keep their hash
            if data.get(key) == default:
                data.pop(key, None)
        if data.get("loss", "mse") == "mse":
            data.pop("huber_delta", None)  # no part of an MSE run's numbers
        if data.get("replay_file") is not None:
            data["replay_file"] = _resolved(self.replay_file)
        elif _replays(self.strategy):
            from optbench.strategies.replay import BUILTIN_VERSION

            data["replay_set"] = BUILTIN_VERSION  # another built-in set is another run
        return data

    def hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_yaml_dict(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "config_hash": self.hash()}
