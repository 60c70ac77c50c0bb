"""On-disk cache of featurized structures, keyed by content, shared by runs, evaluations and trials.

A backbone's graphs depend only on the structures (atomic numbers, positions, cell, boundaries)
and on the backbone's graph settings (cutoffs, modal/head, dtype, the graph code's version), never
on its weights or on the labels. `featurize_frames` hashes exactly those (sha256) and keeps the
graphs of a whole list of frames in one file, `<root>/graphs/<key[:2]>/<key>.pt`:

- root is $OPTBENCH_CACHE, else ~/.cache/optbench (a study uses STUDY_DIR/cache unless
  $OPTBENCH_CACHE is set); OPTBENCH_CACHE=off featurizes every time;
- an entry is written to a temporary file in the same folder and renamed over its final name
  (`os.replace`), so readers never see a partial file and concurrent writers of one key leave
  one complete entry (the last rename wins; both wrote the same graphs);
- an entry that cannot be read (a foreign or damaged file) is a miss, and is rewritten;
- a backbone whose graph settings are unknown here (one registered by a user) is never cached.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

FORMAT = 1  # bump when what an entry holds changes
ENV = "OPTBENCH_CACHE"


def cache_root() -> Path | None:
    """Folder of optbench's caches ($OPTBENCH_CACHE, else ~/.cache/optbench); None when turned off."""
    env = os.environ.get(ENV, "")
    if env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env).expanduser() if env else Path.home() / ".cache" / "optbench"


@contextlib.contextmanager
def cache_in(folder: Path):
    """Point the cache at `folder` for a block (a study's own cache; processes started in it inherit
    it), unless the user set $OPTBENCH_CACHE."""
    if ENV in os.environ:
        yield
        return
    os.environ[ENV] = str(folder)
    try:
        yield
    finally:
        os.environ.pop(ENV, None)


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "unknown"


def graph_settings(backbone) -> dict | None:
    """Everything besides the structures that a backbone's `featurize` depends on; None: unknown."""
    name = getattr(backbone, "name", None)
    if name == "chgnet":
        conv = backbone.model.graph_converter
        return {"backbone": name, "version": _version("chgnet"), "atom_cutoff": float(conv.atom_graph_cutoff),
                "bond_cutoff": float(conv.bond_graph_cutoff), "algorithm": str(getattr(conv, "algorithm", "")),
                "box_cutoff": float(backbone.cutoff)}
    if name == "sevennet":
        return {"backbone": name, "version": _version("sevenn"), "cutoff": float(backbone.cutoff),
                "modal": backbone.modal}
    if name == "mace":
        return {"backbone": name, "version": _version("mace-torch"), "r_max": float(backbone.r_max),
                "zs": [int(z) for z in backbone.z_table.zs], "heads": list(backbone.heads), "head": backbone.head,
                "dtype": str(backbone.dtype)}
    return None


def content_key(frames: Sequence, settings: dict) -> str:
    """sha256 (hex) of the structures of `frames`, in order, and of the graph `settings`."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, **settings}, sort_keys=True).encode())
    for frame in frames:
        atoms = getattr(frame, "atoms", frame)
        h.update(np.int64(len(atoms)).tobytes())
        for arr in (atoms.numbers.astype(np.int64), atoms.positions.astype(np.float64),
                    np.asarray(atoms.cell, dtype=np.float64), atoms.pbc.astype(np.int8)):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def entry_path(key: str, root: Path, kind: str = "graphs") -> Path:
    return root / kind / key[:2] / f"{key}.pt"


def _load(path: Path, n: int, device, what: str = "graphs"):
    """The `what` of an entry, or None when it is missing or not a complete entry of n structures."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location=device, weights_only=False)
    except Exception:  # a damaged or foreign file is a miss
        return None
    value = data.get(what) if isinstance(data, dict) else None
    if what == "predictions":
        return value if isinstance(value, dict) and len(value.get("energy", ())) == n else None
    return value if isinstance(value, list) and len(value) == n else None


def _store(path: Path, value, what: str = "graphs") -> None:
    """Write an entry atomically (temporary file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, what: value}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def featurize_frames(frames: Sequence, backbone) -> list:
    """`backbone.featurize` of every frame, from the cache when an entry of the same content exists."""
    root, settings = cache_root(), graph_settings(backbone)
    if root is None or settings is None or not frames:
        return [backbone.featurize(getattr(f, "atoms", f)) for f in frames]
    path = entry_path(content_key(frames, settings), root)
    graphs = _load(path, len(frames), backbone.device)
    if graphs is not None:
        return graphs
    graphs = [backbone.featurize(getattr(f, "atoms", f)) for f in frames]
    try:
        _store(path, graphs)
    except OSError as err:  # a read-only or full disk costs the cache, not the run
        from optbench.provenance import log

        log.warning(f"graph cache not written ({err}); featurizing again next time")
    return graphs


# ---------------------------------------------------------------- predictions of given weights
_REMEMBER = contextvars.ContextVar("optbench_remember_predictions", default=False)


@contextlib.contextmanager
def remember_predictions():
    """Within the block, `predict_set` reuses the predictions of the same weights on the same graphs
    (a run's E0 pass and zero-shot evaluation, which every trial of a study on the same files
    repeats with the same pretrained weights), stored under `<root>/predictions`."""
    token = _REMEMBER.set(True)
    try:
        yield
    finally:
        _REMEMBER.reset(token)


def weights_key(model: torch.nn.Module) -> str:
    """sha256 (hex) of a model's state dict: names, dtypes, shapes and values."""
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d tensors too
    return h.hexdigest()


def cached_predictions(backbone, fset, batch_size: int, compute) -> dict:
    """compute(backbone, fset, batch_size), from the cache inside `remember_predictions()`.

    The key holds the structures and graph settings, the weights, the batch size, whether stress
    is predicted, the device and the thread count: everything the numbers depend on on CPU.
    """
    root, settings = cache_root(), graph_settings(backbone)
    if not _REMEMBER.get() or root is None or settings is None or not len(fset):
        return compute(backbone, fset, batch_size)
    extra = {"weights": weights_key(backbone.model), "batch_size": batch_size, "stress": bool(fset.any_stress),
             "device": str(backbone.device), "threads": torch.get_num_threads(), "torch": torch.__version__}
    path = entry_path(content_key(fset.frames, {**settings, **extra}), root, "predictions")
    pred = _load(path, len(fset), "cpu", "predictions")
    if pred is None:
        pred = compute(backbone, fset, batch_size)
        with contextlib.suppress(OSError):  # the cache is an optimisation; the numbers are in hand
            _store(path, pred, "predictions")
    return pred
