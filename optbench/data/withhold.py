"""Labels and reference properties that the convergence record does not support are withheld, with the reason.

A crystal whose record misses a tolerance (energy, forces or stress against the denser setting) keeps
its other labels; the missed one is removed from its frames (a fine-tune masks absent labels), and the
reference properties computed from it are not computed. `manifest["withheld"]` says what and why.
"""

from __future__ import annotations

from pathlib import Path

from ase.formula import Formula

from optbench.data.manifest import sha256_file
from optbench.io import read_json, write_json

# record key -> label it judges; property -> the label it is computed from
RECORD_LABELS = {"energy_meV_per_atom": "energy", "forces_meV_per_A": "forces", "stress_GPa": "stress"}
PROPERTY_NEEDS = {"elastic": "stress", "eos": "energy", "phonons": "forces", "vibrations": "forces"}
UNITS = {"energy_meV_per_atom": "meV/atom", "forces_meV_per_A": "meV/Å", "stress_GPa": "GPa"}


def unconverged(record: dict, structures: dict[str, set[str]]) -> dict[str, dict]:
    """{structure: {"labels": [...], "reason": str}} for every structure whose elements match a record
    frame that misses a tolerance (a polymorph shares its composition's record)."""
    out: dict[str, dict] = {}
    for frame in record.get("frames", []):
        elements = set(Formula(frame["formula"]).count())
        missed = [(key, frame[key]) for key in RECORD_LABELS if frame[key] > record["tolerances"][key]]
        if not missed:
            continue
        for name, els in structures.items():
            if els != elements:
                continue
            entry = out.setdefault(name, {"labels": [], "reason": []})
            for key, value in missed:
                entry["labels"].append(RECORD_LABELS[key])
                entry["reason"].append(f"{RECORD_LABELS[key]} changes by {value:.3g} {UNITS[key]} against "
                                       f"{_setting(record['denser_setting'])} (tolerance {record['tolerances'][key]:g})")
    return {k: {"labels": sorted(set(v["labels"])), "reason": "; ".join(dict.fromkeys(v["reason"]))} for k, v in out.items()}


def _setting(denser: dict) -> str:
    return f"{denser['ecut_eV']:g} eV, {denser['kpoint_density_per_A']:g} Å^-1"


def withhold_unconverged(folder: str | Path) -> dict:
    """Apply the manifest's convergence record to a written dataset (idempotent): strip the missed labels
    from that structure's frames, rewrite the split files and their sha256, drop the reference
    properties computed from a missed label from "property_settings", record all in "withheld"."""
    from ase.io import read

    from optbench.io import write_extxyz

    folder = Path(folder)
    man = read_json(folder / "manifest.json")
    record = man.get("reference", {}).get("convergence")
    if not record:
        return {}
    elements = {}
    for name, rel in man["structures"].items():
        elements[name] = set(read(folder / rel, format="extxyz").get_chemical_symbols())
    withheld = unconverged(record, elements)
    for split in man["splits"].values():
        frames = read(folder / split["file"], index=":", format="extxyz")
        changed = False
        for atoms in frames:
            drop = withheld.get(atoms.info.get("structure"), {}).get("labels", [])
            results = atoms.calc.results if atoms.calc is not None else {}
            for label in drop:
                if label in results:
                    del results[label]
                    changed = True
        if changed:
            write_extxyz(folder / split["file"], frames)
            split["sha256"] = sha256_file(folder / split["file"])
    for name, entry in withheld.items():
        props = man.get("property_settings", {}).get(name, {})
        before = man.get("withheld", {}).get(name, {}).get("properties", [])
        entry["properties"] = sorted({*before, *(p for p in props if PROPERTY_NEEDS.get(p) in entry["labels"])})
        for p in entry["properties"]:
            props.pop(p, None)
            man.get("reference_properties", {}).get(name, {}).pop(p, None)
    man["withheld"] = {**man.get("withheld", {}), **withheld}
    write_json(folder / "manifest.json", man)
    return withheld
