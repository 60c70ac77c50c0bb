"""Backbones: one adapter per pretrained potential, chosen by a model spec string.

Specs: `chgnet` (or `chgnet:0.3.0`, `chgnet:PATH`), `sevennet-0` (or `sevennet:PATH`),
`mace:PATH`, `mace-mp-small|medium`, or a RUN_DIR / model folder written by optbench.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from optbench.backbones.base import (
    BACKBONE_FILE,
    Backbone,
    BackboneCalculator,
    Prediction,
    read_backbone_json,
)
from optbench.errors import InputError

# name prefix -> "module:loader"; the loader takes (spec_rest, device) and returns a Backbone.
_ADAPTERS: dict[str, str] = {
    "chgnet": "optbench.backbones.chgnet:load",
    "sevennet": "optbench.backbones.sevennet:load",
    "mace": "optbench.backbones.mace:load",
}

__all__ = ["Backbone", "BackboneCalculator", "Prediction", "load_backbone", "load_calculator", "register_backbone"]


def register_backbone(prefix: str, loader: str) -> None:
    """Add an adapter: `prefix` of the model spec -> 'module:function'."""
    _ADAPTERS[prefix] = loader


def _split(spec: str) -> tuple[str, str]:
    if spec.startswith("sevennet-") or spec.startswith("7net-"):
        return "sevennet", spec
    if spec.startswith("mace-mp"):
        return "mace", spec
    if ":" in spec:
        head, rest = spec.split(":", 1)
        return head, rest
    return spec, ""


def load_backbone(spec: str | Path, device: str = "cpu") -> Backbone:
    """Load a pretrained or fine-tuned backbone from its spec string or a model/run folder."""
    path = Path(spec)
    if path.is_dir():
        from optbench.layout import model_folder

        model_dir = model_folder(path)
        if not (model_dir / BACKBONE_FILE).is_file():
            raise InputError(f"no {BACKBONE_FILE} here: not an optbench run or model folder", file=path, field="model")
        meta = read_backbone_json(model_dir)
        return _load(meta["backbone"], str(model_dir / meta["file"]), device, spec)
    head, rest = _split(str(spec))
    return _load(head, rest, device, spec)


# mace-torch pins e3nn==0.4.4 (breaks sevenn and torch>=2.6): its runtime deps come with the `mace` extra and
# mace-torch itself without deps (make install does both).
MACE_TORCH_VERSION = "0.3.16"
_INSTALL_HINT = {
    "mace": f"install with: pip install 'optbench[mace]' && pip install --no-deps 'mace-torch=={MACE_TORCH_VERSION}'",
}


def _load(head: str, rest: str, device: str, spec) -> Backbone:
    if head not in _ADAPTERS:
        raise InputError(f"unknown model '{spec}' (known: {', '.join(sorted(_ADAPTERS))}, or a run folder)", field="model")
    module, func = _ADAPTERS[head].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise InputError(f"backbone '{head}' needs an extra that is not installed ({err}); {_INSTALL_HINT.get(head, f'pip install optbench[{head}]')}", field="model") from None
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
