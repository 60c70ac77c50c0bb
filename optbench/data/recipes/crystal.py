"""The crystal regime's recipe: Si, NaCl and Al with plane-wave DFT; ID = rattled and strained cubes;
OOD = large strains, vacancies, the CsCl-type NaCl polymorph."""

from __future__ import annotations

import numpy as np

from optbench.data import sampling as S
from optbench.data.recipe import Job, Recipe, split_id, tag_frames
from optbench.data.structures import build_crystal, build_primitive, primitive_to_cubic

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
        frames += tag_frames([S.rattle(S.strain(cube, p["strain_id"], rng), p["rattle_id"], rng) for _ in range(p["frames_id"])],
                       structure=name, config_type="rattled_strained")
    return split_id(frames, rng)


def _cry_strain(structs, ref, rng, p):
    frames = []
    for name in CRYSTALS:
        for _ in range(p["frames_ood"]):
            mag = rng.uniform(*p["strain_ood"])
            frames += tag_frames([S.rattle(S.strain(_cube(structs, name, p), mag, rng), p["rattle"], rng)], structure=name,
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
            frames += tag_frames([S.rattle(a, p["rattle"], rng)], structure=name, config_type="vacancy")
    return {"ood_vacancy": ("OOD", frames)}


def _cry_polymorph(structs, ref, rng, p):
    base = structs["NaCl_B2"] * ((p["repeat_b2"],) * 3)
    frames = [S.rattle(S.strain(base, p["strain_id"], rng), p["rattle"], rng) for _ in range(p["frames_polymorph"])]
    return {"ood_polymorph": ("OOD", tag_frames(frames, structure="NaCl_B2", config_type="polymorph_CsCl"))}


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


