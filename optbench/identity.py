"""Identity of a run by content: sha256 of every input file (and of the starting model file).

A run folder records the fingerprint of its inputs; resuming or rerunning it with a file
whose content changed is refused with the file named, never silently mixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from optbench.errors import InputError


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_file(spec: str) -> Path | None:
    """The file behind a model spec (`chgnet:PATH`, `mace:PATH`, a RUN_DIR), None for a named model."""
    from optbench.backbones.base import BACKBONE_FILE, read_backbone_json, split_suffix
    from optbench.layout import model_folder

    path = Path(spec)
    if path.is_dir():
        folder = model_folder(path)
        if (folder / BACKBONE_FILE).is_file():
            try:
                return folder / read_backbone_json(folder)["file"]
            except (OSError, ValueError, KeyError):
                return None
        return None
    if ":" in spec:
        rest, _ = split_suffix(spec.split(":", 1)[1])
        if Path(rest).is_file():
            return Path(rest)
    return None


def fingerprint(files: Mapping[str, str | Path | None]) -> dict[str, dict[str, str]]:
    """{label: {path (resolved), sha256}} of every named input file that exists."""
    out = {}
    for label, path in files.items():
        if path is not None and Path(path).is_file():
            out[label] = {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}
    return out


def check_same_inputs(old: Mapping | None, new: Mapping, folder: str | Path, hint: str) -> None:
    """InputError naming the first input whose content differs from the one `folder` was made with."""
    if not old:
        return
    for label, entry in new.items():
        before = old.get(label)
        if before is not None and before.get("sha256") != entry["sha256"]:
            raise InputError(
                f"{label} file {entry['path']} changed since this folder was made "
                f"(sha256 {before['sha256'][:12]} -> {entry['sha256'][:12]}); {hint}",
                file=folder, field=label,
            )
    gone = sorted(set(old) - set(new))
    if gone:
        raise InputError(f"input '{gone[0]}' of this folder is no longer given; {hint}", file=folder, field=gone[0])
