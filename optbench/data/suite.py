"""The built-in suite's sampling recipes: per regime, the structures, the sampling jobs and the properties.

The regimes themselves (names, reference methods, where their data ship) are entries of
optbench.regimes, each pointing at its recipe here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.neighborlist import natural_cutoffs

from optbench.data import sampling as S
from optbench.data.reference import reference_block
from optbench.data.structures import (
    build_crystal,
    build_molecule,
    build_primitive,
    primitive_to_cubic,
    water_box,
)
from optbench.regimes import Regime

SIZES = ("small", "full")
ID_FRACTIONS = {"train": 0.6, "valid": 0.15, "test_id": 0.25}


@dataclass
class Job:
    """One resumable unit of work: produces frames for one or more splits."""

    name: str
    run: Callable  # (structures, reference, rng, p) -> {split: (tag, [Atoms])}


@dataclass
class Recipe:
    """How a regime's data are made (its name and reference method: its optbench.regimes entry)."""

    params: dict  # per size: every sampling setting, written to the manifest
    build: Callable  # (reference, rng, p) -> {structure_name: Atoms}
    jobs: list[Job]
    properties: Callable  # p -> {structure_name: {PropertyName: settings}}
    notes: str = ""
    extra: dict = field(default_factory=dict)
    convergence_frames: Callable | None = None  # (structures, rng, p) -> [(frame, base)]: DFT convergence record


def split_id(frames: list[Atoms], rng: np.random.RandomState) -> dict:
    """Partition in-distribution frames into train / valid / test_id with a seeded shuffle."""
    order = rng.permutation(len(frames))
    n_train = int(round(ID_FRACTIONS["train"] * len(frames)))
    n_valid = int(round(ID_FRACTIONS["valid"] * len(frames)))
    parts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test_id": order[n_train + n_valid:]}
    tags = {"train": "train", "valid": "valid", "test_id": "ID"}
    return {k: (tags[k], [frames[i] for i in sorted(idx)]) for k, idx in parts.items()}


def _tag(frames, **info):
    for f in frames:
        f.info.update(info)
    return frames


# ------------------------------------------------------------------ molecular
MOLECULES = ("ethanol", "malonaldehyde", "butane")


def _mol_build(ref, rng, p):
    return {m: S.relax(build_molecule(m), ref, fmax=0.005, steps=300) for m in MOLECULES}


def _mol_md(temperature):
    def run(structs, ref, rng, p):
        frames = []
        for name, atoms in structs.items():
            frames += _tag(S.langevin(atoms, ref, temperature_K=temperature, timestep_fs=p["timestep_fs"],
                                      n_equil=p["n_equil"], n_frames=p[f"frames_{temperature}K"], interval=p["interval"],
                                      rng=rng, desc=f"MD {name} {temperature} K"), structure=name, config_type=f"md_{temperature}K")
        return frames
    return run


def _bonded(atoms, i):
    """Indices bonded to atom i (distance below the sum of natural covalent cutoffs; molecules only)."""
    cut = np.array(natural_cutoffs(atoms, mult=1.2))
    d = np.linalg.norm(atoms.positions - atoms.positions[i], axis=1)
    return [int(j) for j in np.where((d < cut + cut[i]) & (np.arange(len(atoms)) != i))[0]]


def _side(atoms, start, blocked):
    """Atoms reachable from `start` without passing through `blocked` (the moving half of a torsion)."""
    seen, todo = {start}, [start]
    while todo:
        for j in _bonded(atoms, todo.pop()):
            if j != blocked and j not in seen:
                seen.add(j)
                todo.append(j)
    return sorted(seen)


def _mol_scans(structs, ref, rng, p):
    n = p["scan_points"]
    frames = []
    eth = structs["ethanol"]
    o = int(np.where(eth.numbers == 8)[0][0])
    h = [j for j in _bonded(eth, o) if eth.numbers[j] == 1][0]
    c1 = [j for j in _bonded(eth, o) if eth.numbers[j] == 6][0]
    c2 = [j for j in _bonded(eth, c1) if eth.numbers[j] == 6][0]
    frames += _tag(S.dihedral_scan(eth, (h, o, c1, c2), n, mask=[int(i == h) for i in range(len(eth))]), structure="ethanol", config_type="torsion_scan")
    bu = structs["butane"]
    carbons = [int(i) for i in np.where(bu.numbers == 6)[0]]
    ends = [c for c in carbons if sum(bu.numbers[j] == 6 for j in _bonded(bu, c)) == 1]
    a = ends[0]
    b = [j for j in _bonded(bu, a) if bu.numbers[j] == 6][0]
    c = [j for j in _bonded(bu, b) if bu.numbers[j] == 6 and j != a][0]
    d = [j for j in _bonded(bu, c) if bu.numbers[j] == 6 and j != b][0]
    moving = set(_side(bu, c, b))
    frames += _tag(S.dihedral_scan(bu, (a, b, c, d), n, mask=[int(i in moving) for i in range(len(bu))]), structure="butane", config_type="torsion_scan")
    ma = structs["malonaldehyde"]
    frames += _tag(S.proton_transfer_scan(ma, donor=0, acceptor=4, proton=5, n=n), structure="malonaldehyde", config_type="proton_transfer_scan")
    return {"ood_scan": ("OOD", frames)}


MOLECULAR = Recipe(
    params={
        "small": {"timestep_fs": 0.5, "n_equil": 100, "interval": 10, "frames_300K": 20, "frames_600K": 8, "scan_points": 12},
        "full": {"timestep_fs": 0.5, "n_equil": 1000, "interval": 40, "frames_300K": 300, "frames_600K": 100, "scan_points": 36},
    },
    build=_mol_build,
    jobs=[
        Job("id_300K", lambda s, r, g, p: split_id(_mol_md(300)(s, r, g, p), g)),
        Job("ood_600K", lambda s, r, g, p: {"ood_600K": ("OOD", _mol_md(600)(s, r, g, p))}),
        Job("ood_scan", _mol_scans),
    ],
    properties=lambda p: {m: {"vibrations": {}} for m in MOLECULES},
    notes="gas-phase molecules; ID = 300 K Langevin MD; OOD = 600 K MD, rigid torsion scans, proton-transfer scan",
)


# ------------------------------------------------------------------ crystal
CRYSTALS = ("Si", "NaCl", "Al")


def _cry_build(ref, rng, p):
    """Relaxed primitive cells (the property structures) and the relaxed CsCl-type NaCl cell."""
    out = {c: S.relax(build_primitive(c), ref, cell=True, fmax=0.005) for c in CRYSTALS}
    out["NaCl_B2"] = S.relax(build_crystal("NaCl_B2", 1), ref, cell=True, fmax=0.005)
    return out


def _cube(structs, name, p):
    return primitive_to_cubic(structs[name], p["repeat"])


def _cry_id(structs, ref, rng, p):
    """Thermal-like samples: conventional cubes with Gaussian displacements and random strains."""
    frames = []
    for name in CRYSTALS:
        cube = _cube(structs, name, p)
        frames += _tag([S.rattle(S.strain(cube, p["strain_id"], rng), p["rattle_id"], rng) for _ in range(p["frames_id"])],
                       structure=name, config_type="rattled_strained")
    return split_id(frames, rng)


def _cry_strain(structs, ref, rng, p):
    frames = []
    for name in CRYSTALS:
        for _ in range(p["frames_ood"]):
            mag = rng.uniform(*p["strain_ood"])
            frames += _tag([S.rattle(S.strain(_cube(structs, name, p), mag, rng), p["rattle"], rng)], structure=name,
                           config_type="large_strain")
    return {"ood_strain": ("OOD", frames)}


def _cry_vacancy(structs, ref, rng, p):
    frames = []
    for name in CRYSTALS:
        base = _cube(structs, name, p)
        for _ in range(p["frames_ood"]):
            a = base.copy()
            drop = [int(rng.randint(len(a)))]
            if name == "NaCl":  # Schottky pair keeps the cell neutral
                other = 17 if a.numbers[drop[0]] == 11 else 11
                drop.append(int(rng.choice(np.where(a.numbers == other)[0])))
            del a[sorted(drop, reverse=True)]
            frames += _tag([S.rattle(a, p["rattle"], rng)], structure=name, config_type="vacancy")
    return {"ood_vacancy": ("OOD", frames)}


def _cry_polymorph(structs, ref, rng, p):
    base = structs["NaCl_B2"] * ((p["repeat_b2"],) * 3)
    frames = [S.rattle(S.strain(base, p["strain_id"], rng), p["rattle"], rng) for _ in range(p["frames_polymorph"])]
    return {"ood_polymorph": ("OOD", _tag(frames, structure="NaCl_B2", config_type="polymorph_CsCl"))}


def _cry_convergence_frames(structs, rng, p):
    """(frame, base) pairs of the convergence record: each crystal's relaxed primitive cell (Al doubled, so
    that forces are not zero by symmetry) as base, strained by up to 1% and rattled by 0.05 Å as frame."""
    pairs = []
    for name in CRYSTALS:
        base = structs[name] * (2, 1, 1) if len(structs[name]) == 1 else structs[name]
        pairs += [(S.rattle(S.strain(base, p["strain_id"], rng), p["rattle_id"], rng), base)
                  for _ in range(p["convergence_frames"])]
    return pairs


def _cry_properties(p):
    """Reference properties of the primitive cells (phonons: 2x2x2 supercell of the primitive cell)."""
    return {c: {"eos": {}, "elastic": {}, "phonons": {"supercell": p["phonon_supercell"]}} for c in CRYSTALS}


CRYSTAL = Recipe(
    params={
        "small": {"repeat": 1, "repeat_b2": 1, "frames_id": 11, "strain_id": 0.01, "rattle_id": 0.05,
                  "strain_ood": [0.03, 0.06], "rattle": 0.04, "frames_ood": 2, "frames_polymorph": 5,
                  "phonon_supercell": 2, "convergence_frames": 1},
        "full": {"repeat": 2, "repeat_b2": 3, "frames_id": 200, "strain_id": 0.01, "rattle_id": 0.05,
                 "strain_ood": [0.03, 0.06], "rattle": 0.04, "frames_ood": 40, "frames_polymorph": 40,
                 "phonon_supercell": 3, "convergence_frames": 2},
    },
    build=_cry_build,
    jobs=[Job("id", _cry_id), Job("ood_strain", _cry_strain), Job("ood_vacancy", _cry_vacancy), Job("ood_polymorph", _cry_polymorph)],
    properties=_cry_properties,
    convergence_frames=_cry_convergence_frames,
    notes="Si (diamond), NaCl (rocksalt) and Al (fcc), plane-wave DFT (GPAW, PBEsol) with k-points; ID = conventional "
          "cubes rattled by 0.05 Å with strains up to 1%; OOD = 3-6% strains, vacancies (Schottky pair in NaCl), "
          "CsCl-type NaCl polymorph; properties on the relaxed primitive cells",
)


# ------------------------------------------------------------------ liquid and interface
def _water_build(name, vacuum_key=None):
    def build(ref, rng, p):
        vac = p.get("vacuum", 0.0)
        box = water_box(p["molecules"], p["density"], np.random.default_rng(rng.randint(2**31)), vacuum=vac)
        box = S.relax(box, ref, fmax=0.1, steps=60)
        last = S.langevin(box, ref, temperature_K=300, timestep_fs=p["timestep_fs"], n_equil=p["n_equil"], n_frames=1,
                          interval=1, rng=rng, desc=f"equilibrate {name}")[-1]
        last.info.clear()
        out = {name: last}
        if "ood_density" in p:
            dense = water_box(p["molecules"], p["ood_density"], np.random.default_rng(rng.randint(2**31)))
            out[f"{name}_dense"] = S.relax(dense, ref, fmax=0.1, steps=60)
        return out
    return build


def _water_md(struct, temperature, split, tag, frames_key, partition=False):
    def run(structs, ref, rng, p):
        frames = S.langevin(structs[struct], ref, temperature_K=temperature, timestep_fs=p["timestep_fs"],
                            n_equil=p["n_equil"], n_frames=p[frames_key], interval=p["interval"], rng=rng,
                            desc=f"MD {struct} {temperature} K")
        frames = _tag(frames, structure=struct, config_type=f"md_{temperature}K")
        return split_id(frames, rng) if partition else {split: (tag, frames)}
    return run


# MD observables (md, interface properties): equilibration ends once two 0.2 ps blocks of temperature
# are within 20 K of 300 K (at most `property_equilibration_steps`), then `property_steps` x 0.5 fs of
# production. Diffusion needs >= 2.5 ps (lags 0.25-1.25 ps, at most half the run): the full sets have
# 5 ps; the small sets 1.5 ps (what ~40 min of one core affords with GFN1-xTB), so their
# diffusion is null with the reason.
_MD_SMALL = {"property_steps": 3000, "property_equilibration_steps": 800}
_MD_FULL = {"property_steps": 10000, "property_equilibration_steps": 2000}


def _md_settings(p: dict) -> dict:
    """Settings shared by the md and interface properties of the water regimes."""
    return {"temperature_K": 300.0, "timestep_fs": p["timestep_fs"], "equilibration_steps": p["property_equilibration_steps"],
            "equilibration_block_steps": 400, "equilibration_tolerance_K": 20.0, "nvt_steps": p["property_steps"],
            "sample_every": 10, "progress": False}


LIQUID = Recipe(
    params={
        "small": {"molecules": 16, "density": 1.0, "ood_density": 1.15, "timestep_fs": 0.5, "n_equil": 40,
                  "interval": 6, "frames_id": 50, "frames_ood": 15, **_MD_SMALL,
                  "property_npt_steps": 0},
        "full": {"molecules": 32, "density": 1.0, "ood_density": 1.15, "timestep_fs": 0.5, "n_equil": 1000,
                 "interval": 20, "frames_id": 400, "frames_ood": 100, **_MD_FULL, "property_npt_steps": 4000},
    },
    build=_water_build("water"),
    jobs=[
        Job("id_300K", _water_md("water", 300, None, None, "frames_id", partition=True)),
        Job("ood_400K", _water_md("water", 400, "ood_400K", "OOD", "frames_ood")),
        Job("ood_dense", _water_md("water_dense", 300, "ood_dense", "OOD", "frames_ood")),
    ],
    properties=lambda p: {"water": {"md": {**_md_settings(p), "nve_steps": 0, "npt_steps": p["property_npt_steps"]}}},
    notes="periodic water box at 1.0 g/cm^3, Gamma-point xTB; ID = 300 K MD; OOD = 400 K MD and a 1.15 g/cm^3 box",
)

INTERFACE = Recipe(
    params={
        "small": {"molecules": 16, "density": 1.0, "vacuum": 12.0, "timestep_fs": 0.5, "n_equil": 40,
                  "interval": 6, "frames_id": 50, "frames_ood": 15, **_MD_SMALL},
        "full": {"molecules": 32, "density": 1.0, "vacuum": 15.0, "timestep_fs": 0.5, "n_equil": 1000,
                 "interval": 20, "frames_id": 400, "frames_ood": 100, **_MD_FULL},
    },
    build=_water_build("water_film"),
    jobs=[
        Job("id_300K", _water_md("water_film", 300, None, None, "frames_id", partition=True)),
        Job("ood_400K", _water_md("water_film", 400, "ood_400K", "OOD", "frames_ood")),
    ],
    properties=lambda p: {"water_film": {"interface": {**_md_settings(p), "axis": 2}}},
    notes="water film (two liquid/vapour interfaces) in a periodic slab with vacuum along z; ID = 300 K MD; OOD = 400 K MD",
)

def reference_for(regime: Regime, method: str | None = None) -> dict:
    """The reference block of a regime (its default method unless `method` is given)."""
    return reference_block(method or regime.method)
