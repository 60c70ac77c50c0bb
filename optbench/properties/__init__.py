"""Physical properties of any ASE calculator (pretrained, fine-tuned or the reference method).

Each property is a small object: settings in the constructor (checked there: a bad one is an
InputError naming the field), `calc(atoms, calculator) -> dict` of plain numbers and arrays,
`compare(result, reference) -> dict` of errors. `calc` writes no files: `calc_with_artefacts`
also returns the named files that go with a result (figures, phonopy's band.yaml), and the caller
writes them (`run_property` with `optbench.io.write_artefacts`).
"""

from __future__ import annotations

from optbench.properties.base import Property
from optbench.properties.elastic import Elastic
from optbench.properties.eos import EOS
from optbench.properties.interface import Interface
from optbench.properties.md import MD
from optbench.properties.phonons import Phonons
from optbench.properties.vibrations import Vibrations

# the registry: the single source of the property names (the CLI, studies and manifests read them here).
# A new property is a Property dataclass in a file of its own plus one line here (or register_property).
PROPERTIES: dict[str, type[Property]] = {
    "elastic": Elastic,
    "eos": EOS,
    "phonons": Phonons,
    "vibrations": Vibrations,
    "md": MD,
    "interface": Interface,
}


def register_property(cls: type[Property]) -> type[Property]:
    """Add (or replace) the property class `cls` under `cls.name`; returns it (usable as a decorator)."""
    PROPERTIES[cls.name] = cls
    return cls


def unregister_property(name: str) -> None:
    """Remove the property `name` (a test's toy entry, for instance)."""
    PROPERTIES.pop(name, None)


def get_property(name: str, settings: dict | None = None) -> Property:
    """The property object `name` built from `settings` (defaults when None)."""
    from optbench.errors import InputError

    if name not in PROPERTIES:
        raise InputError(f"unknown property '{name}' (known: {', '.join(PROPERTIES)})", field="property")
    return PROPERTIES[name].from_settings(settings)


def compare(name: str, result: dict, reference: dict) -> dict:
    """Errors of `result` against `reference` for property `name` (see each class's `compare`)."""
    return PROPERTIES[name].compare(result, reference)


def run_property(name: str, *, model: str, structure: str, dataset: str | None = None, out: str,
                 device: str = "cpu", settings: dict | None = None) -> dict:
    """Compute property `name` of `structure` with `model` on `device`; write OUT/NAME.json and its artefacts.
    `settings` replace single entries of the reference's settings."""
    from optbench.properties.run import run_property as _run

    return _run(name, model=model, structure=structure, dataset=dataset, out=out, device=device, settings=settings)


__all__ = ["EOS", "MD", "PROPERTIES", "Elastic", "Interface", "Phonons", "Property", "Vibrations",
           "compare", "get_property", "register_property", "run_property", "unregister_property"]
