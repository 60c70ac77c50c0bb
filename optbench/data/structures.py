"""Starting structures of the built-in suite: molecules, crystals, water boxes and films (Å)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule

WATER_MOLAR_MASS = 18.015  # g/mol
AVOGADRO = 6.02214076e23


def malonaldehyde() -> Atoms:
    """Enol form of malonaldehyde (C3O2H4) with the H-bonded proton near O1; planar, approximate."""
    symbols = "OCCCOHHHH"
    pos = [
        [-1.25, -1.00, 0.0],  # O1 (hydroxyl)
        [-1.20, 0.30, 0.0],   # C1
        [0.00, 0.95, 0.0],    # C2
        [1.22, 0.25, 0.0],    # C3
        [1.25, -1.00, 0.0],   # O2 (carbonyl)
        [-0.35, -1.40, 0.0],  # transferring H on O1
        [-2.15, 0.85, 0.0],
        [0.00, 2.03, 0.0],
        [2.15, 0.82, 0.0],
    ]
    return Atoms(symbols, positions=pos)


def build_molecule(name: str) -> Atoms:
    """A named gas-phase molecule in a non-periodic cell."""
    atoms = malonaldehyde() if name == "malonaldehyde" else molecule({"ethanol": "CH3CH2OH", "butane": "trans-butane"}[name])
    atoms.center()
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


# experimental lattice constants (Å): Si, NaCl (room temperature), Al
LATTICE = {"Si": ("diamond", 5.431), "NaCl": ("rocksalt", 5.640), "Al": ("fcc", 4.050)}
# primitive fcc vectors (0,a/2,a/2), (a/2,0,a/2), (a/2,a/2,0) -> conventional cube
FCC_TO_CUBIC = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]])


def build_crystal(name: str, repeat: int) -> Atoms:
    """Conventional cubic cell repeated `repeat` times along each axis (experimental lattice constants)."""
    if name in LATTICE:
        unit = bulk(name, LATTICE[name][0], a=LATTICE[name][1], cubic=True)
    elif name == "NaCl_B2":  # CsCl-type polymorph at the rocksalt volume per formula unit
        unit = bulk("NaCl", "cesiumchloride", a=(5.640**3 / 4) ** (1 / 3))
    else:
        raise KeyError(name)
    return unit * (repeat, repeat, repeat)


def build_primitive(name: str) -> Atoms:
    """Primitive fcc-lattice cell (Si 2, NaCl 2, Al 1 atom) at the experimental lattice constant."""
    return bulk(name, LATTICE[name][0], a=LATTICE[name][1])


def primitive_to_cubic(prim: Atoms, repeat: int = 1) -> Atoms:
    """The conventional cube (x `repeat`) of a primitive fcc-lattice cell built as in `build_primitive`."""
    from ase.build import make_supercell

    return make_supercell(prim, FCC_TO_CUBIC * repeat)


def water_box(n_molecules: int, density: float, rng: np.random.Generator, vacuum: float = 0.0) -> Atoms:
    """Water molecules on a jittered cubic grid at `density` g/cm^3; `vacuum` Å added along z makes a film."""
    volume = n_molecules * WATER_MOLAR_MASS / AVOGADRO / density * 1e24  # Å^3
    length = volume ** (1 / 3)
    k = int(np.ceil(n_molecules ** (1 / 3)))
    spacing = length / k
    sites = [np.array([i, j, m]) for i in range(k) for j in range(k) for m in range(k)]
    chosen = rng.permutation(len(sites))[:n_molecules]
    water = molecule("H2O")
    atoms = Atoms(cell=[length, length, length + vacuum], pbc=True)
    for s in sorted(chosen):
        m = water.copy()
        m.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COP")
        m.positions -= m.positions.mean(axis=0)
        m.translate((sites[s] + 0.5) * spacing + rng.uniform(-0.15, 0.15, size=3))
        atoms += m
    atoms.positions[:, 2] += vacuum / 2
    return atoms
