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
- a backbone whose graph settings are unknown here (one registered by a user) is never cached;
- graphs of one plain class are stored one tensor per attribute (`_pack`): loading 1000 CHGNet
  graphs then takes milliseconds instead of half a second.

Entries are never evicted: `optbench cache` shows the size per kind and `optbench cache clear [--older-than
DAYS] [--kind K]` removes entries (optbench.cli_cache); what a run needs again is featurized again.

The frames parsed from an extxyz file are kept too (`cached_read`, `<root>/frames/...pkl`, keyed
by the file's bytes and the reading settings), so that a warm evaluation imports no extxyz parser.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

FORMAT = 1  # bump when what an entry holds changes
KINDS = ("graphs", "predictions", "frames")  # the folders of entries under the root (gpaw-setups/ there is not ours)
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


@contextlib.contextmanager
def cache_off():
    """No cache read or written for a block (a dry run writes nothing)."""
    before = os.environ.get(ENV)
    os.environ[ENV] = "off"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def package_version(module: str) -> str:
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
        return {"backbone": name, "version": package_version("chgnet"), "atom_cutoff": float(conv.atom_graph_cutoff),
                "bond_cutoff": float(conv.bond_graph_cutoff), "algorithm": str(getattr(conv, "algorithm", "")),
                "box_cutoff": float(backbone.cutoff)}
    if name == "sevennet":
        return {"backbone": name, "version": package_version("sevenn"), "cutoff": float(backbone.cutoff),
                "modal": backbone.modal}
    if name == "mace":
        return {"backbone": name, "version": package_version("mace-torch"), "r_max": float(backbone.r_max),
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
    return root / kind / key[:2] / f"{key}.{'pkl' if kind == 'frames' else 'pt'}"


def _load(path: Path, n: int | None, device, what: str = "graphs"):
    """The `what` of an entry, or None when it is missing or not a complete entry of n structures
    (n None: any number but none)."""
    if not path.is_file():
        return None
    try:
        if what == "frames":  # plain objects: pickle, without importing torch
            with open(path, "rb") as fh:
                data = pickle.load(fh)
        else:
            import torch

            data = torch.load(path, map_location=device, weights_only=False)
    except Exception:  # a damaged or foreign file is a miss
        return None
    value = _unpack(data.get(what)) if isinstance(data, dict) else None
    if what == "predictions":
        return value if isinstance(value, dict) and len(value.get("energy", ())) == n else None
    return value if isinstance(value, list) and (len(value) == n if n is not None else len(value) > 0) else None


def _store(path: Path, value, what: str = "graphs") -> None:
    """Write an entry atomically (temporary file in the same folder, then os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if what == "frames":
                pickle.dump({"format": FORMAT, what: value}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            else:
                import torch

                torch.save({"format": FORMAT, what: _pack(value) if what == "graphs" else value}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pack(objs: list):
    """Objects of one plain class (pickled through their __dict__) with their tensors kept as one
    tensor per attribute: torch.load pays ~0.5 ms per stored tensor, 0.5 s for 1000 CHGNet graphs.
    Any other list is stored as it is."""
    import torch

    cls = type(objs[0]) if objs else None
    plain = cls is not None and not hasattr(cls, "__setstate__") and cls.__reduce_ex__ is object.__reduce_ex__ \
        and cls.__reduce__ is object.__reduce__ and cls.__getstate__ is object.__getstate__
    if not plain or any(type(o) is not cls or vars(o).keys() != vars(objs[0]).keys() for o in objs):
        return objs
    columns = {}
    for key in vars(objs[0]):
        vals = [vars(o)[key] for o in objs]
        same = all(torch.is_tensor(v) and v.dim() > 0 and not v.requires_grad for v in vals) and \
            len({(v.dtype, v.device, v.shape[1:]) for v in vals}) == 1
        columns[key] = (torch.cat(vals), [len(v) for v in vals]) if same else (None, vals)
    return {"packed": cls, "columns": columns}


def _unpack(value):
    if not (isinstance(value, dict) and "packed" in value):
        return value
    cls, columns = value["packed"], value["columns"]
    cols = {key: list(t.split(sizes)) if t is not None else sizes for key, (t, sizes) in columns.items()}
    n = len(next(iter(cols.values()))) if cols else 0
    out = []
    for i in range(n):
        obj = cls.__new__(cls)
        obj.__dict__.update({key: col[i] for key, col in cols.items()})
        out.append(obj)
    return out


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
    import torch

    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d tensors too
    return h.hexdigest()


def cached_predictions(backbone, fset, batch_size: int, compute, *, forces: bool = True) -> dict:
    """compute(backbone, fset, batch_size), from the cache inside `remember_predictions()`.

    The key holds the structures and graph settings, the weights, the batch size, whether forces
    (False: energies alone) and stress are predicted, the device and the thread count: everything
    the numbers depend on on CPU.
    """
    import torch

    root, settings = cache_root(), graph_settings(backbone)
    if not _REMEMBER.get() or root is None or settings is None or not len(fset):
        return compute(backbone, fset, batch_size)
    extra = {"weights": weights_key(backbone.model), "batch_size": batch_size, "stress": bool(fset.any_stress) and forces,
             "device": str(backbone.device), "threads": torch.get_num_threads(), "torch": torch.__version__,
             **({} if forces else {"forces": False})}  # the key of an entry with forces is as it was
    path = entry_path(content_key(fset.frames, {**settings, **extra}), root, "predictions")
    pred = _load(path, len(fset), "cpu", "predictions")
    if pred is None:
        pred = compute(backbone, fset, batch_size)
        with contextlib.suppress(OSError):  # the cache is an optimisation; the numbers are in hand
            _store(path, pred, "predictions")
    return pred


# ---------------------------------------------------------------- parsed files
def cached_read(path: Path, settings: dict, read: Callable[[], list]) -> list:
    """`read()`, the frames parsed and checked from the file at `path`, from the cache when an entry
    of the same file content (its bytes, labels and all) read with the same `settings` exists.

    Parsing extxyz needs ase.io, which imports scipy: with the graphs cached too, a warm
    evaluation or trial imports neither. Only a read that succeeded is stored."""
    root = cache_root()
    if root is None:
        return read()
    h = hashlib.sha256(json.dumps({"format": FORMAT, **settings}, sort_keys=True, default=str).encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    entry = entry_path(h.hexdigest(), root, "frames")
    frames = _load(entry, None, "cpu", "frames")
    if frames is None:
        frames = read()
        with contextlib.suppress(OSError):  # the cache is an optimisation; the frames are in hand
            _store(entry, frames, "frames")
    return frames
