"""Reference property values of a dataset, computed by the same property objects that judge the models."""

from __future__ import annotations

import time
from pathlib import Path

from ase.io import read

from optbench.data.manifest import load_manifest
from optbench.data.reference import make_calculator
from optbench.io import to_jsonable, write_json


def compute_reference_properties(atoms, reference: dict, settings: dict[str, dict]) -> dict:
    """{property name: result dict} of `atoms` with the reference calculator; one code path with the models."""
    from optbench.properties import get_property

    out = {}
    for name, prop_settings in settings.items():
        prop = get_property(name, prop_settings)
        # wavefunction restart between geometries only speeds up the SCF; labels never use it
        calc = make_calculator({**reference, "wavefunction_restart": True})
        t0 = time.perf_counter()
        result = to_jsonable(prop.calc(atoms.copy(), calc))
        result["wall_time_s"] = round(time.perf_counter() - t0, 1)
        out[name] = result
    return out


def fill_reference_properties(folder: str | Path, workers: int = 1) -> dict:
    """Compute every missing entry of manifest "reference_properties" (from "property_settings");
    the manifest is rewritten after each property, so an interrupted run resumes. `workers` > 1
    computes that many (structure, property) pairs at once in separate processes."""
    folder = Path(folder)
    man = load_manifest(folder)
    plan = man.get("property_settings") or {}
    refs = man.setdefault("reference_properties", {})
    todo = []
    for struct, props in plan.items():
        atoms = read(folder / man["structures"][struct], format="extxyz")
        atoms.info.clear()
        todo += [(struct, name, atoms, settings) for name, settings in props.items() if name not in refs.get(struct, {})]

    def done(struct, name, result):
        refs.setdefault(struct, {}).update(result)
        write_json(folder / "manifest.json", man)
        print(f"reference {name} of {struct} ({man['reference']['method']}): {result[name].get('wall_time_s')} s", flush=True)

    if workers > 1 and len(todo) > 1:
        _fill_parallel(todo, man["reference"], workers, done)
    else:
        for struct, name, atoms, settings in todo:
            done(struct, name, compute_reference_properties(atoms, man["reference"], {name: settings}))
    return refs


def _fill_parallel(todo, reference, workers, done) -> None:
    """The (structure, property) pairs in `workers` one-thread processes; `done` as each finishes."""
    from concurrent.futures import as_completed

    from optbench.data.parallel import one_thread_pool

    with one_thread_pool(workers) as pool:
        jobs = {pool.submit(compute_reference_properties, atoms, reference, {name: settings}): (struct, name)
                for struct, name, atoms, settings in todo}
        for future in as_completed(jobs):
            done(*jobs[future], future.result())


def redo_reference_properties(folder: str | Path, names: list[str], settings: dict[str, dict] | None = None) -> dict:
    """Recompute the reference properties `names` (e.g. ["md"]) of a dataset, leaving its frames and
    every other entry alone: drop them, optionally replace their "property_settings" by
    `settings` ({property name: settings}), and fill them again."""
    folder = Path(folder)
    man = load_manifest(folder)
    for struct, props in (man.get("property_settings") or {}).items():
        for name in names:
            if name in props:
                if settings and name in settings:
                    props[name] = settings[name]
                (man.get("reference_properties") or {}).get(struct, {}).pop(name, None)
    write_json(folder / "manifest.json", man)
    return fill_reference_properties(folder)


def main(argv: list[str] | None = None) -> int:
    """python -m optbench.data.refprops [--redo NAME ...] DIR [DIR ...]: fill missing reference
    properties (with --redo: recompute NAME first, e.g. --redo md)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m optbench.data.refprops")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--redo", action="append", default=[], help="property to recompute (repeatable)")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if args.redo:
            redo_reference_properties(folder, args.redo)
        else:
            fill_reference_properties(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
