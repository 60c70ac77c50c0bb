"""Backbones: one adapter per pretrained potential, chosen by a model spec string.

Specs: `chgnet` (or `chgnet:0.3.0`, `chgnet:PATH`), `sevennet-0` (or `sevennet:PATH`),
`mace:PATH`, `mace-mp-small|medium`, or a RUN_DIR / model folder written by optbench.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from optbench.backbones.base import (
    BACKBONE_FILE,
    Backbone,
    BackboneCalculator,
    Prediction,
    read_backbone_json,
)
from optbench.errors import InputError

# mace-torch pins e3nn==0.4.4 (breaks sevenn and torch>=2.6): its runtime deps come with the `mace` extra and
# mace-torch itself without deps (make install does both).
MACE_TORCH_VERSION = "0.3.16"


@dataclass(frozen=True)
class Adapter:
    """Everything optbench knows of one backbone, in its registry entry."""

    loader: str  # "module:function"; the function takes (spec_rest, device) and returns a Backbone
    package: str | None = None  # the distribution that provides it (provenance records its version); None: its name
    aliases: tuple[str, ...] = ()  # spec prefixes that name it as a whole ("sevennet-0", "mace-mp-small")
    install: str | None = None  # how to install it when its import fails; None: pip install optbench[NAME]


# the registry: spec prefix -> Adapter. A new backbone is an adapter module plus one line here (or register_backbone).
_ADAPTERS: dict[str, Adapter] = {
    "chgnet": Adapter("optbench.backbones.chgnet:load", package="chgnet"),
    "sevennet": Adapter("optbench.backbones.sevennet:load", package="sevenn", aliases=("sevennet-", "7net-")),
    "mace": Adapter("optbench.backbones.mace:load", package="mace-torch", aliases=("mace-mp",),
                    install=f"pip install 'optbench[mace]' && pip install --no-deps 'mace-torch=={MACE_TORCH_VERSION}'"),
}

__all__ = ["Adapter", "Backbone", "BackboneCalculator", "Prediction", "backbone_package", "load_backbone",
           "load_calculator", "register_backbone", "unregister_backbone"]


def register_backbone(prefix: str, loader: str | Adapter, **entry) -> None:
    """Add an adapter: `prefix` of the model spec -> 'module:function' (the other `Adapter` fields as
    keywords), or a whole `Adapter`."""
    _ADAPTERS[prefix] = loader if isinstance(loader, Adapter) else Adapter(loader, **entry)


def unregister_backbone(prefix: str) -> None:
    """Remove the adapter `prefix` (a test's toy entry, for instance)."""
    _ADAPTERS.pop(prefix, None)


def backbone_package(name: str) -> str:
    """The distribution that provides backbone `name` (its own name when the registry does not say)."""
    entry = _ADAPTERS.get(name)
    return entry.package if entry is not None and entry.package else name


def _split(spec: str) -> tuple[str, str]:
    for name, entry in _ADAPTERS.items():
        if spec.startswith(entry.aliases):
            return name, spec
    if ":" in spec:
        head, rest = spec.split(":", 1)
        return head, rest
    return spec, ""


def load_backbone(spec: str | Path, device: str = "cpu") -> Backbone:
    """Load a pretrained or fine-tuned backbone from its spec string, a model/run folder, or a checkpoint
    of a run (RUN_DIR/checkpoints/<tag>.pt)."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".pt" and path.parent.name == "checkpoints":
        return _from_checkpoint(path, device)
    if path.is_dir():
        from optbench.layout import model_folder

        model_dir = model_folder(path)
        if not (model_dir / BACKBONE_FILE).is_file():
            raise InputError(f"no {BACKBONE_FILE} here: not an optbench run or model folder", file=path, field="model")
        meta = read_backbone_json(model_dir)
        return _load(meta["backbone"], str(model_dir / meta["file"]), device, spec)
    head, rest = _split(str(spec))
    return _load(head, rest, device, spec)


def _from_checkpoint(path: Path, device: str) -> Backbone:
    """RUN_DIR/checkpoints/<tag>.pt: the run's saved model with the weights of that checkpoint (e.g. `final`,
    before the L-BFGS refinement whose weights RUN_DIR/model holds)."""
    from optbench.io import torch_load

    backbone = load_backbone(path.parent.parent, device)
    state = torch_load(path, device, required=("model_state",))["model_state"]
    try:
        backbone.model.load_state_dict(state)
    except Exception as err:  # torch raises many types on a corrupt file or weights of another model
        first = " ".join(str(err).split())[:200]
        raise InputError(f"not a checkpoint of this run's model ({type(err).__name__}: {first})", file=path,
                         field="model") from None
    return backbone


def _load(head: str, rest: str, device: str, spec) -> Backbone:
    if head not in _ADAPTERS:
        raise InputError(f"unknown model '{spec}' (known: {', '.join(sorted(_ADAPTERS))}, or a run folder)", field="model")
    entry = _ADAPTERS[head]
    module, func = entry.loader.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise InputError(f"backbone '{head}' needs an extra that is not installed ({err}); {entry.install or f'pip install optbench[{head}]'}", field="model") from None
    try:
        return getattr(mod, func)(rest, device)
    except InputError:
        raise
    except Exception as err:  # a file that is not a model, a wrong format, a failed download
        first = " ".join(str(err).split())[:200]
        raise InputError(f"cannot load model '{spec}' ({type(err).__name__}: {first})", file=rest or None,
                         field="model") from None


def load_calculator(spec: str | Path, device: str = "cpu") -> BackboneCalculator:
    """ASE calculator of a pretrained backbone (`"chgnet"`) or a fine-tuned run (`RUN_DIR`)."""
    return load_backbone(spec, device).calculator()
