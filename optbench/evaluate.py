"""Energy, force and stress errors of a model on named test sets (ID or OOD).

Blocks map a set name to n_structures, energy_mae / energy_rmse (meV/atom), forces_mae /
forces_rmse (meV/Å, over force components), forces_cos (mean cosine of predicted vs reference
force vectors) and stress_mae / stress_rmse (GPa, over the 9 components) where the set has stress.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from optbench.backbones.base import Backbone
from optbench.batch import GPA_PER_EV_A3, FeaturizedSet


@contextlib.contextmanager
def inference(backbone: Backbone):
    """Eval mode with parameter gradients off (forces still come from autograd on positions)."""
    params = [p for p in backbone.model.parameters() if p.requires_grad]
    was_training = backbone.model.training
    backbone.model.eval()
    for p in params:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for p in params:
            p.requires_grad_(True)
        backbone.model.train(was_training)


def predict_set(backbone: Backbone, fset: FeaturizedSet, batch_size: int = 16) -> dict[str, list[np.ndarray]]:
    """Per-structure predictions: energy (eV), forces (eV/Å), stress (eV/Å^3) for every frame
    (inside `featcache.remember_predictions()`, those of the same weights on the same graphs are reused)."""
    from optbench.featcache import cached_predictions

    return cached_predictions(backbone, fset, batch_size, _predict_set)


def predict_energies(backbone: Backbone, fset: FeaturizedSet, batch_size: int = 16) -> list[float]:
    """Energy (eV) of every frame, without forces where the backbone can skip them: the same
    numbers as `predict_set(...)["energy"]` for less (cached like it, as its own entry)."""
    from optbench.featcache import cached_predictions

    return cached_predictions(backbone, fset, batch_size, _predict_energies, forces=False)["energy"]


def _predict_energies(backbone: Backbone, fset: FeaturizedSet, batch_size: int) -> dict[str, list]:
    energy: list[float] = []
    with inference(backbone):
        for start in range(0, len(fset), batch_size):
            e = backbone.predict_energy(fset.graphs[start : start + batch_size])
            energy.extend(float(x) for x in e.double().cpu().numpy())
    return {"energy": energy}


def _predict_set(backbone: Backbone, fset: FeaturizedSet, batch_size: int) -> dict[str, list[np.ndarray]]:
    every = list(range(len(fset)))
    energy, forces, stress = predict_groups(backbone, fset, batch_size, [(every, fset.any_stress)])
    return {"energy": energy, "forces": forces, "stress": stress if all(s is not None for s in stress) else []}


def predict_groups(backbone: Backbone, fset: FeaturizedSet, batch_size: int,
                   groups: list[tuple[list[int], bool]]) -> tuple[list, list, list]:
    """Energy (eV), forces (eV/Å, one array per structure) and stress (eV/Å^3 or None) of every
    structure of `fset`, in its order; each group (indices, with stress) is batched on its own."""
    n = len(fset)
    energy, forces, stress = [0.0] * n, [None] * n, [None] * n
    with inference(backbone):
        for indices, want_stress in groups:
            for start in range(0, len(indices), batch_size):
                idx = indices[start : start + batch_size]
                pred = backbone.predict([fset.graphs[i] for i in idx], stress=want_stress, create_graph=False)
                e = pred.energy.detach().double().cpu().numpy()
                split = np.cumsum([fset.frames[i].n_atoms for i in idx])[:-1]
                f = np.split(pred.forces.detach().double().cpu().numpy(), split)
                s = pred.stress.detach().double().cpu().numpy() if want_stress and pred.stress is not None else None
                for k, i in enumerate(idx):
                    energy[i], forces[i] = float(e[k]), f[k]
                    if s is not None:
                        stress[i] = s[k]
    return energy, forces, stress


def metrics_from_predictions(fset: FeaturizedSet, pred: Mapping[str, list]) -> dict:
    """Error block of one set (units in the module docstring)."""
    frames = fset.frames
    block: dict = {"n_structures": len(frames)}
    e_err = [(pe - f.energy) / f.n_atoms for pe, f in zip(pred["energy"], frames) if f.energy is not None]
    e_err = 1000.0 * np.asarray(e_err)
    block["energy_mae"] = float(np.mean(np.abs(e_err))) if e_err.size else None
    block["energy_rmse"] = float(np.sqrt(np.mean(e_err**2))) if e_err.size else None
    fp = [p for p, f in zip(pred["forces"], frames) if f.forces is not None]
    if fp:
        fp = np.concatenate(fp)
        fr = np.concatenate([f.forces for f in frames if f.forces is not None])
        diff = 1000.0 * (fp - fr)
        block["forces_mae"] = float(np.mean(np.abs(diff)))
        block["forces_rmse"] = float(np.sqrt(np.mean(diff**2)))
        norms = np.linalg.norm(fp, axis=1) * np.linalg.norm(fr, axis=1)
        ok = norms > 1e-12
        block["forces_cos"] = float(np.mean(np.sum(fp * fr, axis=1)[ok] / norms[ok])) if ok.any() else None
    else:
        block.update(forces_mae=None, forces_rmse=None, forces_cos=None)
    sp = [p for p, f in zip(pred["stress"], frames) if f.stress is not None] if pred["stress"] else []
    if sp:
        sr = np.stack([f.stress for f in frames if f.stress is not None])
        s_err = (np.stack(sp) - sr) * GPA_PER_EV_A3
        block["stress_mae"] = float(np.mean(np.abs(s_err)))
        block["stress_rmse"] = float(np.sqrt(np.mean(s_err**2)))
    return block


def evaluate_sets(backbone: Backbone, sets: Mapping[str, FeaturizedSet], batch_size: int = 16, tags: Mapping[str, str] | None = None) -> dict:
    """Error blocks of every named set."""
    result = {}
    for name, fset in sets.items():
        block = metrics_from_predictions(fset, predict_set(backbone, fset, batch_size))
        if tags and name in tags:
            block["tag"] = tags[name]
        result[name] = block
    return result


def tag_of(name: str) -> str:
    """ID/OOD tag from a test-set name: names starting with 'ood' are out of distribution."""
    return "OOD" if name.lower().startswith("ood") else "ID"


def evaluate_model(
    model: str, tests: Mapping[str, str | Path], out: str | Path | None = None, *,
    energy_key: str = "energy", forces_key: str = "forces", stress_key: str = "stress",
    batch_size: int = 16, device: str = "cpu", named_keys: set[str] | None = None,
) -> dict:
    """Error blocks of any model (spec or RUN_DIR) on named extxyz files; JSON to `out`.

    Every input is checked first (structures, the label keys in `named_keys` must occur in
    each set, `out` must be a writable file path), so a bad one costs no evaluation.
    """
    from optbench.data.io import LabelKeys, read_frames

    keys = LabelKeys(energy=energy_key, forces=forces_key, stress=stress_key)
    from optbench.e0 import split_isolated  # IsolatedAtom frames are E0 data, not test structures

    frames = {name: split_isolated(read_frames(path, keys), path)[0] for name, path in tests.items()}
    if out is None:
        return _evaluate_frames(model, tests, frames, None, energy_key, forces_key, stress_key, batch_size, device,
                                named_keys)
    from optbench.errors import InputError
    from optbench.io import check_writable_dir

    if Path(out).is_dir():
        raise InputError("is a directory; give the path of the JSON file to write", file=out, field="out")
    parent = Path(out).parent
    created = not parent.exists()
    check_writable_dir(parent)
    try:
        return _evaluate_frames(model, tests, frames, out, energy_key, forces_key, stress_key, batch_size, device,
                                named_keys)
    except BaseException:
        if created and not Path(out).exists():
            import shutil

            shutil.rmtree(parent, ignore_errors=True)
        raise


def _evaluate_frames(model, tests, frames, out, energy_key, forces_key, stress_key, batch_size, device, named_keys):
    from optbench.backbones import load_backbone
    from optbench.config import _check_device
    from optbench.errors import InputError
    from optbench.sanity import check_structures, coverage_lines, label_coverage

    try:
        _check_device(device)
    except ValueError as err:
        raise InputError(str(err), field="device") from None
    backbone = load_backbone(model, device)
    cutoff = getattr(backbone, "cutoff", None) or getattr(backbone, "r_max", None)
    for name, fr in frames.items():
        backbone.check_elements({z for f in fr for z in f.atoms.numbers}, tests[name])
        check_structures(fr, tests[name], cutoff)
    key_names = {"energy": energy_key, "forces": forces_key, "stress": stress_key}
    coverage = label_coverage({n: (str(tests[n]), fr) for n, fr in frames.items()}, key_names,
                              named_keys or (), required_in=set(frames))
    for line in coverage_lines(coverage):
        print(line)
    sets = {name: FeaturizedSet(fr, backbone, name) for name, fr in frames.items()}
    block = evaluate_sets(backbone, sets, batch_size, {n: tag_of(n) for n in sets})
    if out is not None:
        from optbench.io import write_json

        write_json(out, {"model": str(model), "metrics": block})
    return block


def format_table(metrics: Mapping[str, Mapping[str, Mapping]]) -> str:
    """Plain-text table: one row per (block, set)."""
    cols = ("n_structures", "energy_mae", "energy_rmse", "forces_mae", "forces_rmse", "forces_cos", "stress_mae")
    heads = ("stage", "set", "n", "E MAE", "E RMSE", "F MAE", "F RMSE", "F cos", "S MAE")
    rows = [heads, ("", "", "", "meV/at", "meV/at", "meV/Å", "meV/Å", "", "GPa")]
    for stage, block in metrics.items():
        for name, m in block.items():
            cells = [stage, name]
            for c in cols:
                v = m.get(c)
                cells.append("-" if v is None else (str(v) if c == "n_structures" else (f"{v:.3f}" if c in ("forces_cos", "stress_mae") else f"{v:.2f}")))
            rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    return "\n".join("  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows)
