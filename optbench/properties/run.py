"""`optbench property NAME`: read the structure, pick the calculator, compute, compare, write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms

from optbench.errors import InputError
from optbench.io import check_writable_dir, read_json, to_jsonable, write_artefacts, write_json


def read_structure(path: str | Path) -> Atoms:
    """The (last) structure in any ASE-readable file; InputError when missing or unreadable."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise InputError("structure file not found", file=path, field="structure")
    try:
        atoms = ase.io.read(path)
    except Exception as err:  # ASE raises many kinds for unreadable files
        raise InputError(f"cannot read a structure ({type(err).__name__}: {err})", file=path, field="structure") from None
    if isinstance(atoms, list):
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise InputError("structure has no atoms", file=path, field="structure")
    return atoms


def read_manifest(dataset: str | Path) -> dict:
    """DIR/manifest.json of a dataset folder; InputError when missing or malformed."""
    path = Path(dataset) / "manifest.json"
    if not path.is_file():
        raise InputError("dataset has no manifest.json", file=path, field="dataset")
    try:
        manifest = read_json(path)
    except ValueError as err:
        raise InputError(f"manifest is not valid JSON ({err})", file=path, field="dataset") from None
    if not isinstance(manifest, dict):
        raise InputError("manifest must be a JSON object", file=path, field="dataset")
    return manifest


def _formula(atoms: Atoms) -> str:
    return str(atoms.symbols.formula.reduce()[0])


def match_structure(manifest: dict, dataset: str | Path, structure: str | Path, atoms: Atoms) -> str | None:
    """Name of the manifest's structure entry matching `structure`: by resolved path, then file
    stem, then reduced formula; None when nothing matches."""
    entries = manifest.get("structures") or {}
    dataset = Path(dataset)
    target = Path(structure).resolve()
    for name, rel in entries.items():
        if (dataset / rel).resolve() == target:
            return name
    stem = Path(structure).stem
    for name, rel in entries.items():
        if Path(rel).stem == stem or name == stem:
            return name
    formula = _formula(atoms)
    for name, rel in entries.items():
        path = dataset / rel
        if path.is_file():
            try:
                if _formula(read_structure(path)) == formula:
                    return name
            except InputError:
                continue
    return None


def reference_calculator(manifest: dict, dataset: str | Path):
    """The reference method's ASE calculator from the manifest's "reference" block."""
    if not isinstance(manifest.get("reference"), dict):
        raise InputError("manifest has no 'reference' block", file=Path(dataset) / "manifest.json", field="reference")
    try:
        from optbench.data.reference import make_calculator
    except ImportError as err:
        raise InputError(f"the reference calculators are not available ({err})", field="model") from None
    return make_calculator(manifest["reference"])


def property_object(name: str, reference: dict | None, settings: dict | None, dataset, entry: str | None):
    """The property object with the reference value's settings, `settings` replacing single entries;
    InputError naming the manifest field when the reference's own settings are bad."""
    from optbench.properties import get_property

    base = reference.get("settings") if isinstance(reference, dict) else None
    if base is not None:
        try:
            get_property(name, base)
        except InputError as err:
            raise InputError(f"bad settings in the reference value ({err})", file=Path(dataset) / "manifest.json",
                             field=f"reference_properties.{entry}.{name}.settings") from None
    try:
        return get_property(name, {**(base or {}), **(settings or {})})
    except InputError as err:
        raise InputError(f"bad {name} settings ({err})", field="settings") from None


def run_property(name: str, *, model: str, structure: str, dataset: str | None = None, out: str,
                 device: str = "cpu", settings: dict | None = None) -> dict[str, Any]:
    """Compute property `name` of `structure` with `model` ("reference", "chgnet", RUN_DIR, ...),
    write OUT/NAME.json with "error_vs_reference" (dict or None) and the property's artefacts
    (figures, band.yaml) beside it, and return the result.

    Settings come from the dataset's reference entry when there is one, so model and reference
    are computed identically; otherwise the property's defaults. `settings` replace single entries
    (e.g. a shorter MD run a study can afford: its statistical errors grow, its nulls say why).
    """
    from optbench.properties import PROPERTIES

    if name not in PROPERTIES:
        raise InputError(f"unknown property '{name}' (known: {', '.join(PROPERTIES)})", field="property")
    out_dir = check_writable_dir(out)
    atoms = read_structure(structure)
    manifest, entry, reference = None, None, None
    if dataset is not None:
        manifest = read_manifest(dataset)
        entry = match_structure(manifest, dataset, structure, atoms)
        refs = (manifest.get("reference_properties") or {}).get(entry or "", {}) or {}
        reference = refs.get(name)
    prop = property_object(name, reference, settings, dataset, entry)  # bad settings fail before any loading
    if model == "reference":
        if manifest is None:
            raise InputError("--model reference needs --dataset (its manifest names the reference method)", field="dataset")
        calculator = reference_calculator(manifest, dataset)
    else:
        from optbench.backbones import load_calculator

        calculator = load_calculator(model, device)
    raw, artefacts = prop.calc_with_artefacts(atoms, calculator)
    write_artefacts(out_dir, artefacts)
    result = to_jsonable(raw)
    result = {
        "property": name,
        "model": str(model),
        "structure": str(structure),
        "dataset": None if dataset is None else str(dataset),
        "manifest_entry": entry,
        **result,
        "error_vs_reference": prop.compare(result, reference) if isinstance(reference, dict) else None,
    }
    write_json(out_dir / f"{name}.json", result)
    return result
