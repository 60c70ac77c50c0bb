"""Dataset folders: manifest.json (regime, reference, keys, splits with sha256) and where the suite lives."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from optbench.data.io import LabelKeys
from optbench.errors import InputError
from optbench.io import read_json
from optbench.regimes import get_regime

TAGS = ("train", "valid", "ID", "OOD")
REQUIRED = ("name", "regime", "reference", "keys", "splits")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def suite_path(regime: str) -> Path:
    """Folder of the shipped `--size small` dataset of a regime (holds manifest.json)."""
    return get_regime(regime).path()


def load_manifest(folder: str | Path, verify: bool = False) -> dict:
    """Read and check a dataset folder's manifest.json; with `verify`, check every split's sha256."""
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise InputError("no manifest.json: not a dataset folder", file=folder)
    try:
        man = read_json(path)
    except ValueError as err:
        raise InputError(f"not valid JSON ({err})", file=path) from None
    for key in REQUIRED:
        if key not in man:
            raise InputError("missing field", file=path, field=key)
    for name, split in man["splits"].items():
        for key in ("file", "tag", "count", "sha256"):
            if key not in split:
                raise InputError("missing field", file=path, field=f"splits.{name}.{key}")
        if split["tag"] not in TAGS:
            raise InputError(f"tag '{split['tag']}' is not one of {TAGS}", file=path, field=f"splits.{name}.tag")
        f = folder / split["file"]
        if not f.is_file():
            raise InputError("split file missing", file=f, field=f"splits.{name}.file")
        if verify and split["sha256"] and sha256_file(f) != split["sha256"]:
            raise InputError("sha256 does not match the manifest (file changed or corrupt)", file=f, field=f"splits.{name}.sha256")
    return man


@dataclass
class DatasetFiles:
    """What `optbench finetune` needs from a dataset folder: files by role and the label keys."""

    train: Path
    valid: Path | None
    tests: dict[str, Path]  # name -> file; names of OOD sets start with 'ood'
    keys: LabelKeys
    manifest: dict


@dataclass
class Splits:
    """A manifest's splits by role: the train file, the first valid file, and per test split its tag and file."""

    train: Path
    valid: Path | None
    tests: dict[str, tuple[str, Path]]  # split name -> (ID | OOD, file)


def manifest_splits(folder: str | Path, man: dict) -> Splits:
    """The files of a checked manifest (`load_manifest`) by role. The train split is "train_split",
    else the split named train, else the first one tagged train."""
    folder = Path(folder)
    splits = man["splits"]
    tagged = next((n for n, s in splits.items() if s["tag"] == "train"), "train")
    train_name = man.get("train_split") or ("train" if "train" in splits else tagged)
    if train_name not in splits:
        raise InputError(f"no split named '{train_name}'", file=folder / "manifest.json", field="train_split")
    valid = next((folder / s["file"] for s in splits.values() if s["tag"] == "valid"), None)
    tests = {name: (s["tag"], folder / s["file"]) for name, s in splits.items() if s["tag"] in ("ID", "OOD")}
    return Splits(folder / splits[train_name]["file"], valid, tests)


def dataset_files(folder: str | Path) -> DatasetFiles:
    """Train file, optional valid file, named ID/OOD test files and label keys of a dataset folder."""
    folder = Path(folder)
    man = load_manifest(folder)
    parts = manifest_splits(folder, man)
    tests = {}
    for name, (tag, path) in parts.tests.items():
        label = name if (tag == "OOD") == name.lower().startswith("ood") else f"{tag.lower()}_{name}"
        tests[label] = path
    keys = man["keys"]
    label_keys = LabelKeys(**{k: keys[k] for k in ("energy", "forces", "stress", "virial") if keys.get(k)})
    return DatasetFiles(parts.train, parts.valid, tests, label_keys, man)


def finetune_inputs(folder: str | Path) -> dict:
    """The dataset-dependent part of a FinetuneConfig: train file, named test files and key names."""
    files = dataset_files(folder)
    keys = files.keys
    return {"train": files.train, "tests": files.tests, "energy_key": keys.energy, "forces_key": keys.forces,
            "stress_key": keys.stress, "virial_key": keys.virial}
