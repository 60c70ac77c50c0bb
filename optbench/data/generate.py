"""`optbench data generate`: build a suite dataset with the offline reference; seeded and resumable."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import numpy as np
from ase.io import read
from tqdm import tqdm

from optbench.data.manifest import sha256_file
from optbench.data.recipe import SIZES, reference_for
from optbench.data.sampling import label, roundtrip
from optbench.errors import InputError
from optbench.io import check_writable_dir, read_json, write_extxyz, write_json
from optbench.regimes import get_regime

KEYS = {"energy": "energy", "forces": "forces", "stress": "stress"}
PROGRESS = ".partial/progress.json"


def _rng(seed: int, stream: int) -> np.random.RandomState:
    """Independent, reproducible random stream per job (so resuming changes nothing)."""
    return np.random.RandomState(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _identity(regime: str, size: str, seed: int, reference: dict | None, params: dict) -> dict:
    """What must match to resume or reuse a folder (the reference's convergence record is an output)."""
    ref = {k: v for k, v in (reference or {}).items() if k != "convergence"}
    return {"regime": regime, "size": size, "seed": seed, "reference": ref, "params": params}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("optbench", "ase", "tblite", "pyscf", "gpaw", "numpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def generate(regime: str, size: str = "small", out: str | Path = ".", seed: int = 0, method: str | None = None,
             properties: bool = True, workers: int = 1) -> Path:
    """Generate (or resume) the `regime` dataset in folder `out`; returns the folder. `workers` processes
    label frames and compute reference properties in parallel (same numbers as one)."""
    entry = get_regime(regime)
    if size not in SIZES:
        raise InputError(f"unknown size '{size}' (choose from {', '.join(SIZES)})", field="size")
    reg = entry.load_recipe()
    params = reg.params[size]
    reference = reference_for(entry, method)
    out = check_writable_dir(out)
    state = _resume(out, _identity(regime, size, int(seed), reference, params), f"{regime} ({size})", len(reg.jobs))
    if state is not None:
        t0 = time.perf_counter()
        with tqdm(total=1 + len(reg.jobs), desc=f"generate {regime} ({size})", unit="job") as bar:
            structs, t0 = _structures(reg, reference, params, state, out, seed, t0)
            bar.update(1)
            t0 = _convergence(reg, reference, params, state, out, structs, seed, workers, t0)
            t0 = _jobs(reg, reference, params, state, out, structs, seed, workers, t0, bar)
        state["wall_time_s"] += time.perf_counter() - t0
        write_json(out / "manifest.json", _manifest(regime, size, seed, reg, params, reference, state))
        if "convergence" in state:
            from optbench.data.withhold import withhold_unconverged

            withhold_unconverged(out)  # labels and properties the convergence record does not support
        shutil.rmtree(out / ".partial", ignore_errors=True)
    elif not properties or read_json(out / "manifest.json").get("reference_properties"):
        return out
    if properties:
        from optbench.properties.reference import fill_reference_properties
        fill_reference_properties(out, workers=workers)
    return out


def _resume(out: Path, ident: dict, what: str, n_jobs: int) -> dict | None:
    """The generation state to go on from (fresh, or an interrupted run's); None when `out` already
    holds the finished dataset of these settings. InputError for a folder made with other settings."""
    progress_path = out / PROGRESS
    if (out / "manifest.json").is_file():
        man = read_json(out / "manifest.json")
        if _identity(man.get("regime"), man.get("size"), man.get("seed"), man.get("reference"), man.get("sampling")) == ident:
            return None
        raise InputError("folder already holds a dataset made with other settings; choose another --out", file=out / "manifest.json")
    if progress_path.is_file():
        state = read_json(progress_path)
        if state["identity"] != ident:
            raise InputError("folder holds an interrupted generation with other settings; choose another --out", file=progress_path)
        print(f"resuming {what} in {out}: {len(state['jobs'])} of {n_jobs} jobs done")
        return state
    if any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise InputError("output folder is not empty", file=out, field="--out")
    return {"identity": ident, "structures": {}, "jobs": {}, "splits": {}, "wall_time_s": 0.0}


def _structures(reg, reference, params, state, out: Path, seed: int, t0: float) -> tuple[dict, float]:
    """The recipe's relaxed structures (built once, then read back from the folder)."""
    if not state["structures"]:
        structs = reg.build(reference, _rng(seed, 0), params)
        for name, atoms in structs.items():
            rel = f"structures/{name}.extxyz"
            write_extxyz(out / rel, [roundtrip(atoms)])
            state["structures"][name] = rel
        t0 = _save(out / PROGRESS, state, t0)
    structs = {name: read(out / rel, format="extxyz") for name, rel in state["structures"].items()}
    for atoms in structs.values():
        atoms.info.clear()
    return structs, t0


def _convergence(reg, reference, params, state, out: Path, structs, seed: int, workers: int, t0: float) -> float:
    """The DFT convergence record, for a recipe that has one and a GPAW reference."""
    if reg.convergence_frames is not None and reference.get("code") == "gpaw" and "convergence" not in state:
        from optbench.data.gpaw_ref import convergence_record

        pairs = [(roundtrip(f), b) for f, b in reg.convergence_frames(structs, _rng(seed, len(reg.jobs) + 1), params)]
        state["convergence"] = convergence_record(pairs, reference, workers=workers)
        t0 = _save(out / PROGRESS, state, t0)
    return t0


def _jobs(reg, reference, params, state, out: Path, structs, seed: int, workers: int, t0: float, bar) -> float:
    """Run and label each sampling job not done yet; each job's splits are saved as it finishes."""
    for i, job in enumerate(reg.jobs, start=1):
        if job.name in state["jobs"] and all((out / state["splits"][s]["file"]).is_file() for s in state["jobs"][job.name]):
            bar.update(1)
            continue
        produced = job.run(structs, reference, _rng(seed, i), params)
        for split, (tag, frames) in produced.items():
            labelled, dropped = label(frames, reference, desc=f"label {split}", workers=workers)
            rel = f"{split}.extxyz"
            write_extxyz(out / rel, labelled)
            state["splits"][split] = {"file": rel, "tag": tag, "count": len(labelled), "sha256": sha256_file(out / rel),
                                    "scf_failures_dropped": dropped}
        state["jobs"][job.name] = list(produced)
        t0 = _save(out / PROGRESS, state, t0)
        bar.update(1)
    return t0


def _manifest(regime: str, size: str, seed: int, reg, params: dict, reference: dict, state: dict) -> dict:
    return {
        "name": f"optbench-{regime}-{size}",
        "regime": regime,
        "size": size,
        "seed": int(seed),
        "description": reg.notes,
        "reference": {**reference, **({"convergence": state["convergence"]} if "convergence" in state else {})},
        "keys": dict(KEYS),
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å^3 (ASE sign: positive in tension)"},
        "train_split": "train",
        "splits": {s: state["splits"][s] for s in _split_order(state)},
        "structures": state["structures"],
        "sampling": params,
        "reference_properties": {},
        "property_settings": reg.properties(params),
        "generation": {"wall_time_s": round(state["wall_time_s"], 1), "versions": _versions(),
                       "command": f"optbench data generate {regime} --size {size} --seed {seed} --out DIR"},
    }


def _split_order(state: dict) -> list[str]:
    rank = {"train": 0, "valid": 1, "ID": 2, "OOD": 3}
    return sorted(state["splits"], key=lambda s: (rank[state["splits"][s]["tag"]], s))


def _save(path: Path, state: dict, t0: float) -> float:
    state["wall_time_s"] += time.perf_counter() - t0
    write_json(path, state)
    return time.perf_counter()
