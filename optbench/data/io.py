"""Read labelled structures (extxyz) under any key names, with clear errors on bad input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from optbench.errors import InputError

# Keys ASE's extxyz reader (>= 3.23) moves from info/arrays into a SinglePointCalculator.
_CALC_NAMES = ("energy", "free_energy", "forces", "stress", "virial")


@dataclass(frozen=True)
class LabelKeys:
    """Names of the label fields in the extxyz file (as in MACE's options)."""

    energy: str = "energy"
    forces: str = "forces"
    stress: str = "stress"
    virial: str = "virial"


@dataclass
class Frame:
    """One labelled structure. energy in eV, forces in eV/Å, stress 3x3 in eV/Å^3 (ASE sign)."""

    atoms: Atoms
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


def shared_data_dir() -> Path:
    """Folder of the reference DFT data beside a checkout: $OPTBENCH_SHARED_DATA or <repo>/../shared/data."""
    import os

    env = os.environ.get("OPTBENCH_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def _lookup(atoms: Atoms, key: str):
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = atoms.calc
    if calc is not None and key in _CALC_NAMES and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _as_stress(value, path, key, i) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size == 9:
        return arr.reshape(3, 3)
    if arr.size == 6:  # Voigt order xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = arr
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise InputError(f"frame {i}: expected 6 or 9 values, got {arr.size}", file=path, field=key)


def read_frames(
    path: str | Path,
    keys: LabelKeys | None = None,
    *,
    require_energy: bool = True,
    index: str | slice = ":",
) -> list[Frame]:
    """Read every frame of an extxyz file and validate its labels (once per file content: the
    frames are cached, see `optbench.featcache.cached_read`)."""
    from dataclasses import asdict, fields

    from optbench.featcache import cached_read, package_version

    keys = keys or LabelKeys()
    path = Path(path)
    _check_file(path)
    settings = {"what": "extxyz frames", "keys": asdict(keys), "require_energy": require_energy,
                "index": str(index), "frame": [f.name for f in fields(Frame)], "ase": package_version("ase")}
    return cached_read(path, settings, lambda: _parse(path, keys, require_energy, index))


def _parse(path: Path, keys: LabelKeys, require_energy: bool, index) -> list[Frame]:
    images = _read_images(path, index)
    frames = []
    for i, atoms in enumerate(images):
        if len(atoms) == 0:
            raise InputError(f"frame {i} has no atoms", file=path)
        energy = _energy(atoms, keys, path, i, require_energy)
        forces = _forces(atoms, keys, path, i)
        stress = _stress(atoms, keys, path, i)
        clean = Atoms(
            numbers=atoms.get_atomic_numbers(), positions=atoms.get_positions(),
            cell=atoms.get_cell(), pbc=atoms.get_pbc(),
        )
        info = {k: v for k, v in atoms.info.items() if k not in {keys.energy, keys.stress, keys.virial}}
        frames.append(Frame(clean, energy, forces, stress, info))
    return frames


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise InputError("is a directory; expected an extxyz file", file=path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", file=path)


def _read_images(path: Path, index) -> list[Atoms]:
    """The structures of an extxyz file; InputError for a missing, empty or unreadable file."""
    from ase.io import read

    try:
        images = read(path, index=index, format="extxyz")
    except Exception as err:  # ASE raises many types on malformed files
        raise InputError(f"not a readable extxyz file ({type(err).__name__}: {err})", file=path) from None
    if isinstance(images, Atoms):
        images = [images]
    if not images:
        raise InputError("file holds no structures", file=path)
    return images


def _energy(atoms: Atoms, keys: LabelKeys, path: Path, i: int, required: bool) -> float | None:
    energy = _lookup(atoms, keys.energy)
    if energy is None and required:
        raise InputError(f"frame {i} has no energy label", file=path, field=keys.energy)
    if energy is not None:
        try:
            energy = float(np.asarray(energy).reshape(()))
        except (TypeError, ValueError):
            raise InputError(f"frame {i}: energy is not a number", file=path, field=keys.energy) from None
        if not np.isfinite(energy):
            raise InputError(f"frame {i}: energy is not finite", file=path, field=keys.energy)
    return energy


def _forces(atoms: Atoms, keys: LabelKeys, path: Path, i: int) -> np.ndarray | None:
    n = len(atoms)
    forces = _lookup(atoms, keys.forces)
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
        if forces.shape != (n, 3):
            raise InputError(f"frame {i}: forces have shape {forces.shape}, expected ({n}, 3)", file=path, field=keys.forces)
        if not np.all(np.isfinite(forces)):
            raise InputError(f"frame {i}: forces contain NaN or inf", file=path, field=keys.forces)
    return forces


def _stress(atoms: Atoms, keys: LabelKeys, path: Path, i: int) -> np.ndarray | None:
    """The stress label (3x3, eV/Å^3), or minus the virial over the volume."""
    stress = _lookup(atoms, keys.stress)
    if stress is not None:
        stress = _as_stress(stress, path, keys.stress, i)
    else:
        virial = _lookup(atoms, keys.virial)
        if virial is not None:
            vol = atoms.get_volume() if atoms.cell.rank == 3 else 0.0
            if vol <= 0:
                raise InputError(f"frame {i}: virial given but the cell has no volume", file=path, field=keys.virial)
            stress = -_as_stress(virial, path, keys.virial, i) / vol
    if stress is not None and not np.all(np.isfinite(stress)):
        raise InputError(f"frame {i}: stress contains NaN or inf", file=path, field=keys.stress)
    return stress
