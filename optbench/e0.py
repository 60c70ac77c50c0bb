"""Per-element reference energies (E0s, eV per atom): what the run does to the pretrained ones.

The setting (`e0` in a config, `--e0`, MACE's `E0s`) is one of

- `refit` (default; MACE's `estimated`): least squares of the *residuals* of the pretrained
  model on the training set, rank-aware, added to its E0s (`fit_reference_energies`);
- `keep` (MACE's `foundation`): the pretrained E0s as they are;
- `average` (MACE's `average`): least squares of the *total* training energies on the element
  counts, E_i ~ sum_Z n_iZ E0_Z (minimum-norm solution, as `numpy.linalg.lstsq` and MACE give it:
  with a single composition only the sum over that composition is determined); these replace
  the model's E0s;
- `isolated`: the energies of the single-atom frames tagged `config_type=IsolatedAtom` in the
  training file; these replace the model's E0s;
- a mapping element -> eV (symbols or atomic numbers): a dict in YAML/JSON, `H=-13.6,O=-2035.6`,
  MACE's `"{1: -13.6, 8: -2035.6}"`, or a JSON/YAML file holding such a dict.

Frames tagged `IsolatedAtom` are never trained on, validated on or tested, whatever the setting.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from optbench.errors import InputError

MODES = ("refit", "keep", "average", "isolated")
ALIASES = {"estimated": "refit", "foundation": "keep"}  # MACE's names for the same modes


# ---------------------------------------------------------------- parsing the setting
def _symbol(key: Any) -> str:
    from ase.data import atomic_numbers, chemical_symbols

    text = str(key).strip()
    if text.isdigit():
        z = int(text)
        if not 1 <= z < len(chemical_symbols):
            raise ValueError(f"E0 for atomic number {z}: no such element")
        return chemical_symbols[z]
    if text not in atomic_numbers or text == "X":
        raise ValueError(f"E0 for '{text}': not an element symbol or atomic number")
    return text


def _mapping(data: Any) -> dict[str, float]:
    from ase.data import atomic_numbers

    if not isinstance(data, dict) or not data:
        raise ValueError("E0s must be a non-empty mapping element -> energy in eV")
    out = {}
    for key, value in data.items():
        try:
            energy = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"E0 of {key} is not a number: {value!r}") from None
        if not math.isfinite(energy):
            raise ValueError(f"E0 of {key} is not finite")
        out[_symbol(key)] = energy
    return dict(sorted(out.items(), key=lambda kv: atomic_numbers[kv[0]]))


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"expected ELEMENT=eV pairs separated by commas, got '{part.strip()}'")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _file(path: Path) -> dict[str, float]:
    import yaml

    if not path.is_file():
        raise ValueError(f"E0 file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"E0 file {path} is not valid JSON/YAML ({err})") from None
    return _mapping(data)


def parse_e0(value: Any) -> str | dict[str, float]:
    """A mode name (`refit keep average isolated`) or a mapping symbol -> eV, from any accepted form."""
    if isinstance(value, dict):
        return _mapping(value)
    if not isinstance(value, str):
        raise ValueError(f"E0s must be a mode ({', '.join(MODES)}), a mapping or a file, got {value!r}")
    text = value.strip()
    low = text.lower()
    if low in MODES or low in ALIASES:
        return ALIASES.get(low, low)
    if text.startswith("{"):  # MACE's "{1: -13.6, 8: -2035.6}" (YAML flow mapping, JSON too)
        import yaml

        try:
            return _mapping(yaml.safe_load(text))
        except yaml.YAMLError:
            raise ValueError(f"E0s '{text}' is not a readable mapping") from None
    if "=" in text:
        return _mapping(_pairs(text))
    path = Path(text)
    if path.suffix.lower() in (".json", ".yaml", ".yml") or path.exists():
        return _file(path)
    raise ValueError(f"unknown E0s '{text}': use {', '.join(MODES)}, H=-13.6,O=-2035.6, {{1: -13.6}} or a JSON file")


# ---------------------------------------------------------------- isolated-atom frames
def is_isolated_atom(frame) -> bool:
    """A single-atom frame tagged config_type=IsolatedAtom (also isolated_atom, any case)."""
    tag = str(frame.info.get("config_type", "")).replace("_", "").replace(" ", "").lower()
    return frame.n_atoms == 1 and tag == "isolatedatom"


def split_isolated(frames: list, path: str | Path) -> tuple[list, list]:
    """(data frames, IsolatedAtom frames) of the file `path`; a file of IsolatedAtom frames only is an error."""
    iso = [f for f in frames if is_isolated_atom(f)]
    data = [f for f in frames if not is_isolated_atom(f)]
    if not data:
        raise InputError("holds only IsolatedAtom frames, no structures to train or test on", file=path, field="config_type")
    return data, iso


def isolated_e0(frames: list, path: str | Path) -> dict[int, float]:
    """E0 (eV) of each element from its IsolatedAtom frames; conflicting duplicates are an error."""
    out: dict[int, float] = {}
    for f in frames:
        z = int(f.atoms.numbers[0])
        if z in out and not math.isclose(out[z], f.energy, rel_tol=0, abs_tol=1e-8):
            raise InputError(f"two IsolatedAtom frames of element {z} with different energies", file=path, field="config_type")
        out[z] = float(f.energy)
    if not out:
        raise InputError("e0: isolated needs single-atom frames tagged config_type=IsolatedAtom; none found", file=path, field="config_type")
    return out


# ---------------------------------------------------------------- fits
def _counts(frames, zs) -> np.ndarray:
    return np.array([[np.sum(f.atoms.numbers == z) for z in zs] for f in frames], dtype=float)


def fit_reference_energies(backbone, fset, batch_size: int = 16) -> dict:
    """Per-element energy shifts (eV/atom) that best fit the labels, rank-aware.

    First one per-atom offset for all elements, then a minimum-norm per-element correction of
    the remainder: a set with a single composition gets exactly one offset, never a singular fit.
    """
    from ase.data import chemical_symbols

    from optbench.evaluate import predict_energies

    frames = [f for f in fset.frames if f.energy is not None]
    pred = predict_energies(backbone, fset, batch_size)
    resid = np.array([f.energy - p for f, p in zip(fset.frames, pred) if f.energy is not None])
    zs = sorted({int(z) for f in frames for z in f.atoms.numbers})
    counts = _counts(frames, zs)
    n = counts.sum(axis=1)
    offset = float(resid @ n / (n @ n))
    delta, *_ = np.linalg.lstsq(counts, resid - offset * n, rcond=None)
    rank = int(np.linalg.matrix_rank(counts))
    shifts = {z: offset + float(d) for z, d in zip(zs, delta)}
    after = resid - counts @ np.array([shifts[z] for z in zs])
    backbone.shift_reference_energies(shifts)
    return {
        "mode": "refit", "rank": rank, "n_elements": len(zs),
        "shifts_eV": {chemical_symbols[z]: v for z, v in shifts.items()},
        "rmse_before_meV_per_atom": float(1000 * np.sqrt(np.mean((resid / n) ** 2))),
        "rmse_after_meV_per_atom": float(1000 * np.sqrt(np.mean((after / n) ** 2))),
    }


def average_e0(frames: list) -> tuple[dict[int, float], int]:
    """MACE's `average`: E0 (eV) by least squares of total energies on element counts; (E0s, rank)."""
    frames = [f for f in frames if f.energy is not None]
    zs = sorted({int(z) for f in frames for z in f.atoms.numbers})
    counts = _counts(frames, zs)
    e0, *_ = np.linalg.lstsq(counts, np.array([f.energy for f in frames]), rcond=None)
    return {z: float(v) for z, v in zip(zs, e0)}, int(np.linalg.matrix_rank(counts))


# ---------------------------------------------------------------- applying a setting
def _symbols(values: dict[int, float]) -> dict[str, float]:
    from ase.data import chemical_symbols

    return {chemical_symbols[z]: v for z, v in sorted(values.items())}


def set_reference_energies(backbone, target: dict[int, float]) -> dict[int, float]:
    """Replace the backbone's E0s (eV) by `target`; returns the previous values."""
    before = backbone.reference_energies(list(target))
    backbone.shift_reference_energies({z: target[z] - before[z] for z in target})
    return before


def _target(setting: str | dict[str, float], frames: list, isolated: list, path) -> tuple[dict[int, float], dict]:
    """The E0s (eV) a replacing setting asks for, checked against the training elements."""
    from ase.data import atomic_numbers

    if setting == "average":
        target, rank = average_e0(frames)
        info = {"mode": "average", "rank": rank}
    elif setting == "isolated":
        target, info = isolated_e0(isolated, path), {"mode": "isolated"}
    else:
        target, info = {atomic_numbers[s]: v for s, v in setting.items()}, {"mode": "mapping"}
    missing = sorted({int(z) for f in frames for z in f.atoms.numbers} - set(target))
    if missing:
        names = ", ".join(_symbols(dict.fromkeys(missing, 0.0)))
        raise InputError(f"no E0 given for element(s) {names} of the training set", file=path, field="e0")
    return target, info


def check_e0(setting: str | dict[str, float], frames: list, isolated: list, path) -> None:
    """Raise InputError now (before anything is written) when the setting cannot be applied."""
    if setting in ("isolated",) or isinstance(setting, dict):
        _target(setting, frames, isolated, path)


def apply_e0(setting: str | dict[str, float], backbone, fset, isolated: list, train_file: str | Path,
             batch_size: int = 16) -> dict:
    """Apply the E0 setting to `backbone` before training; returns the record for results.json.

    Every record has `mode` and, when the backbone can report them, `E0_eV` (the per-element
    reference energies in eV after the change, for the training elements), and the number of
    IsolatedAtom frames left out of the data.
    """
    zs = sorted({int(z) for f in fset.frames for z in f.atoms.numbers})
    if setting == "refit":
        info = fit_reference_energies(backbone, fset, batch_size)
    elif setting == "keep":
        info = {"mode": "keep"}
    else:
        target, info = _target(setting, fset.frames, isolated, train_file)
        backbone.check_elements(list(target), train_file)
        info["previous_E0_eV"] = _symbols(set_reference_energies(backbone, target))
    with contextlib.suppress(InputError):  # a backbone without per-element E0s: refit/keep still work
        info["E0_eV"] = _symbols(backbone.reference_energies(zs))
    info["isolated_atom_frames_excluded"] = len(isolated)
    return info


def describe_e0(info: dict) -> str:
    """One line for the log: the E0 setting and the values it left (eV per atom)."""
    values = ", ".join(f"{s} {v:.6g}" for s, v in (info.get("E0_eV") or {}).items())
    extra = f"; {info['isolated_atom_frames_excluded']} IsolatedAtom frame(s) left out of the data" \
        if info.get("isolated_atom_frames_excluded") else ""
    return f"E0s ({info['mode']}): {values or 'not reported by this backbone'} eV/atom{extra}"
