"""Atomic writes of results (JSON, YAML, torch checkpoints): never a half-written file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def _atomic(path: str | Path, write: Callable[[Any], None], mode: str = "w") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def to_jsonable(obj: Any) -> Any:
    """Plain-Python copy of `obj` (numpy/torch arrays to lists, non-finite floats to None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n"
    return _atomic(path, lambda fh: fh.write(text))


def read_json(path: str | Path) -> Any:
    """Parsed JSON file; InputError naming the file when it is truncated or corrupted."""
    from optbench.errors import InputError

    try:
        with open(path) as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"not valid JSON, truncated or corrupted ({type(err).__name__} at char "
                         f"{getattr(err, 'pos', '?')}); delete it to recompute", file=path) from None


def write_yaml(path: str | Path, data: Any) -> Path:
    text = yaml.safe_dump(to_jsonable(data), sort_keys=False)
    return _atomic(path, lambda fh: fh.write(text))


def write_text(path: str | Path, text: str) -> Path:
    return _atomic(path, lambda fh: fh.write(text))


def write_extxyz(path: str | Path, frames) -> Path:
    """ASE Atoms (with their calculators' labels) as one extxyz file, written atomically."""
    import io

    from ase.io import write

    buf = io.StringIO()
    write(buf, frames, format="extxyz")
    return write_text(path, buf.getvalue())


def write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(path, lambda fh: fh.write(data), mode="wb")


def write_figure(path: str | Path, fig) -> Path:
    """A matplotlib Figure as PNG (150 dpi, tight box)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def write_artefacts(folder: str | Path, artefacts: dict[str, Any]) -> list[Path]:
    """Write each named artefact of a property under `folder`: a Figure as PNG, text, or bytes."""
    paths = []
    for name, value in artefacts.items():
        path = Path(folder) / name
        if isinstance(value, str):
            paths.append(write_text(path, value))
        elif isinstance(value, bytes):
            paths.append(write_bytes(path, value))
        elif hasattr(value, "savefig"):
            paths.append(write_figure(path, value))
        else:
            raise TypeError(f"artefact '{name}' is a {type(value).__name__}, not a Figure, str or bytes")
    return paths


def torch_save(path: str | Path, obj: Any) -> Path:
    import torch

    return _atomic(path, lambda fh: torch.save(obj, fh), mode="wb")


def torch_load(path: str | Path, device: str = "cpu", *, required: tuple[str, ...] = (), what: str = "checkpoint",
               hint: str = "") -> dict:
    """The dict `torch_save` wrote to `path`, on `device`. InputError naming the file when it is missing or
    unreadable, and naming the first key of `required` it lacks; `hint` (what to do) ends the message."""
    import torch

    from optbench.errors import InputError

    tail = f"; {hint}" if hint else ""
    try:
        data = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # missing file, truncated zip, pickle garbage: torch raises many types
        first = " ".join(str(err).split()).split(". ")[0][:160]  # torch's first sentence says what failed
        raise InputError(f"unreadable {what} ({type(err).__name__}: {first}){tail}", file=path) from None
    if not isinstance(data, dict):
        raise InputError(f"not a {what} (a {type(data).__name__}, not a dict){tail}", file=path)
    for key in required:
        if key not in data:
            raise InputError(f"{what} lacks this key{tail}", file=path, field=key)
    return data


def check_writable_dir(path: str | Path, what: str = "--out") -> Path:
    """Create `path` if needed and check it is writable; InputError otherwise."""
    from optbench.errors import InputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe"):
            pass
    except OSError as err:
        raise InputError(f"output directory is not writable ({err.strerror})", file=path, field=what) from None
    return path
