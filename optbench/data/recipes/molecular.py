"""The molecular regime's recipe: gas-phase molecules; ID = 300 K Langevin MD; OOD = 600 K MD,
rigid torsion scans, a proton-transfer scan."""

from __future__ import annotations

import numpy as np
from ase.neighborlist import natural_cutoffs

from optbench.data import sampling as S
from optbench.data.recipe import Job, Recipe, split_id, tag_frames
from optbench.data.structures import build_molecule

MOLECULES = ("ethanol", "malonaldehyde", "butane")


def _mol_build(ref, rng, p):
    return {m: S.relax(build_molecule(m), ref, fmax=0.005, steps=300) for m in MOLECULES}


def _mol_md(temperature):
    def run(structs, ref, rng, p):
        frames = []
        for name, atoms in structs.items():
            frames += tag_frames(S.langevin(atoms, ref, temperature_K=temperature, timestep_fs=p["timestep_fs"],
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
    frames += tag_frames(S.dihedral_scan(eth, (h, o, c1, c2), n, mask=[int(i == h) for i in range(len(eth))]), structure="ethanol", config_type="torsion_scan")
    bu = structs["butane"]
    carbons = [int(i) for i in np.where(bu.numbers == 6)[0]]
    ends = [c for c in carbons if sum(bu.numbers[j] == 6 for j in _bonded(bu, c)) == 1]
    a = ends[0]
    b = [j for j in _bonded(bu, a) if bu.numbers[j] == 6][0]
    c = [j for j in _bonded(bu, b) if bu.numbers[j] == 6 and j != a][0]
    d = [j for j in _bonded(bu, c) if bu.numbers[j] == 6 and j != b][0]
    moving = set(_side(bu, c, b))
    frames += tag_frames(S.dihedral_scan(bu, (a, b, c, d), n, mask=[int(i in moving) for i in range(len(bu))]), structure="butane", config_type="torsion_scan")
    ma = structs["malonaldehyde"]
    frames += tag_frames(S.proton_transfer_scan(ma, donor=0, acceptor=4, proton=5, n=n), structure="malonaldehyde", config_type="proton_transfer_scan")
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


