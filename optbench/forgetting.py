"""Forgetting: how far fine-tuning moved a model's predictions off the pretrained model's own.

Measured on a built-in probe set over the pretrained model's domain (crystals, molecules and
slabs built with ASE, deterministic, ~40 structures of <= 16 atoms, seconds to evaluate), plus any
other structures given (the other datasets of a study).

Energy drift is what remains of the per-atom energy change after removing the best per-element
offset (a least-squares fit of (E_ft - E_pre)/n on the per-atom composition, minimum norm where
the compositions do not fix every element): a pure E0 refit is such an offset, so a run with the
refit and zero training steps drifts by zero. Units: energy meV/atom, forces meV/Å.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

PROBE = "probe"
PER_TEST_FILE = 8  # structures of each test file of the other datasets that a measure takes (frames_outside)

_CRYSTALS = [  # (symbols, crystal structure, a in Å, extra kwargs)
    ("Cu", "fcc", 3.61, {}), ("Al", "fcc", 4.05, {}), ("Ni", "fcc", 3.52, {}), ("Fe", "bcc", 2.87, {}),
    ("W", "bcc", 3.16, {}), ("Mg", "hcp", 3.21, {"c": 5.21}), ("Ti", "hcp", 2.95, {"c": 4.68}),
    ("Si", "diamond", 5.43, {}), ("C", "diamond", 3.57, {}), ("GaAs", "zincblende", 5.65, {}),
    ("NaCl", "rocksalt", 5.64, {}), ("MgO", "rocksalt", 4.21, {}), ("LiF", "rocksalt", 4.03, {}),
    ("CsCl", "cesiumchloride", 4.12, {}), ("CaF2", "fluorite", 5.46, {}), ("ZnO", "wurtzite", 3.25, {"c": 5.21}),
    ("GaN", "wurtzite", 3.19, {"c": 5.19}), ("Li", "bcc", 3.51, {}),
]
_MOLECULES = ["H2O", "CH4", "NH3", "CO2", "C2H6", "CH3CH2OH", "C6H6", "HCOOH", "CH3CN", "CH3CONH2",
              "C5H5N", "CH3SH", "SiH4", "PH3", "HCl", "CH3Cl", "AlF3", "C4H4S"]
_SLABS = [("fcc111", "Cu"), ("fcc100", "Al"), ("fcc111", "Pt"), ("bcc110", "Fe"), ("hcp0001", "Ru")]


def probe_structures(rattle_A: float = 0.05, seed: int = 0) -> list[Atoms]:
    """The built-in probe set: bulk crystals (primitive cells), g2 molecules and 2x2x3 slabs
    (fully periodic with 6 Å vacuum), each rattled by `rattle_A` Å (Gaussian, fixed seed)."""
    return build_structures(_CRYSTALS, _MOLECULES, _SLABS, rattle_A, seed)


def build_structures(crystals: Sequence[tuple], molecules: Sequence[str], slabs: Sequence[tuple[str, str]],
                     rattle_A: float = 0.05, seed: int = 0) -> list[Atoms]:
    """Bulk crystals `(symbols, structure, a (Å), kwargs)` as ASE's primitive cells, g2 molecules boxed
    in 6 Å of vacuum (not periodic) and 2x2x3 slabs `(surface, element)` with 6 Å of vacuum (fully
    periodic), in that order, each rattled by `rattle_A` Å (Gaussian, seeded by `seed`)."""
    from ase.build import bcc110, bulk, fcc100, fcc111, hcp0001, molecule

    structures = [bulk(sym, kind, a=a, **kw) for sym, kind, a, kw in crystals]
    structures += [_boxed(molecule(name)) for name in molecules]
    makers = {"fcc111": fcc111, "fcc100": fcc100, "bcc110": bcc110, "hcp0001": hcp0001}
    for kind, sym in slabs:
        slab = makers[kind](sym, size=(2, 2, 3), vacuum=6.0)
        slab.pbc = True
        structures.append(slab)
    rng = np.random.default_rng([seed, 31337])
    for atoms in structures:
        atoms.positions += rng.normal(0.0, rattle_A, atoms.positions.shape)
    return structures


def _boxed(atoms: Atoms, vacuum: float = 6.0) -> Atoms:
    atoms.center(vacuum=vacuum)
    atoms.pbc = False
    return atoms


def element_offset_residual(delta_e: np.ndarray, numbers: Sequence[np.ndarray]) -> dict:
    """Per-atom energy change (eV/atom) minus its best per-element offset (least squares, min norm).

    Returns the residuals (eV/atom), the offsets (eV per atom of element Z) and the rank of the
    composition matrix (how many independent offsets were removed).
    """
    zs = sorted({int(z) for nums in numbers for z in nums})
    counts = np.array([[np.sum(np.asarray(nums) == z) for z in zs] for nums in numbers], dtype=float)
    frac = counts / counts.sum(axis=1, keepdims=True)
    offsets, *_ = np.linalg.lstsq(frac, delta_e, rcond=None)
    return {"residual": delta_e - frac @ offsets, "offsets": dict(zip(zs, offsets.tolist())),
            "rank": int(np.linalg.matrix_rank(frac))}


def drift(before: Mapping[str, list], after: Mapping[str, list], structures: Sequence[Atoms]) -> dict:
    """Energy drift (after the per-element offset) and force change between two prediction sets."""
    from ase.data import chemical_symbols

    n = np.array([len(a) for a in structures], dtype=float)
    de = (np.asarray(after["energy"]) - np.asarray(before["energy"])) / n
    fit = element_offset_residual(de, [a.numbers for a in structures])
    df = 1000.0 * (np.concatenate(after["forces"]) - np.concatenate(before["forces"]))
    res = 1000.0 * fit["residual"]
    return {
        "n_structures": len(structures),
        "energy_rms_meV_atom": float(np.sqrt(np.mean(res**2))),
        "energy_max_meV_atom": float(np.max(np.abs(res))),
        "energy_offsets_removed": fit["rank"],
        "energy_offsets_eV": {chemical_symbols[z]: v for z, v in fit["offsets"].items()},
        "forces_rms_meV_A": float(np.sqrt(np.mean(df**2))),
        "forces_mae_meV_A": float(np.mean(np.abs(df))),
    }


def _predict(backbone, structures: Sequence[Atoms]) -> dict:
    from optbench.data.io import Frame
    from optbench.evaluate import predict_set
    from optbench.loss import FeaturizedSet

    return predict_set(backbone, FeaturizedSet([Frame(a.copy()) for a in structures], backbone))


class ForgettingProbe:
    """Pretrained predictions on named structure sets, computed once; `measure(model)` compares."""

    def __init__(self, pretrained: str, extra: Mapping[str, Sequence[Atoms]] | None = None, device: str = "cpu"):
        from optbench.backbones import load_backbone

        self.device = device
        backbone = load_backbone(pretrained, device)
        known = backbone.supported_numbers()
        sets = {PROBE: probe_structures(), **(extra or {})}
        self.sets = {name: [a for a in s if {int(z) for z in a.numbers} <= known] for name, s in sets.items()}
        self.sets = {name: s for name, s in self.sets.items() if s}
        self.reference = {name: _predict(backbone, s) for name, s in self.sets.items()}

    def measure(self, model: str | Path) -> dict:
        """Drift of `model` (a run folder or spec) against the pretrained model, per structure set."""
        from optbench.backbones import load_backbone

        backbone = load_backbone(model, self.device)
        return {name: drift(self.reference[name], _predict(backbone, s), s) for name, s in self.sets.items()}


def columns(result: Mapping[str, Mapping]) -> dict:
    """results.csv columns of one forgetting result: `forgetting_energy_rms_meV_atom` etc. for the
    built-in probe set, `...[<dataset>]` for the other datasets of a study."""
    out = {}
    for name, block in result.items():
        if not isinstance(block, Mapping) or "n_structures" not in block:
            continue
        tail = "" if name == PROBE else f"[{name}]"
        out[f"forgetting_n_structures{tail}"] = block["n_structures"]
        for key in ("energy_rms_meV_atom", "energy_max_meV_atom", "forces_rms_meV_A", "forces_mae_meV_A"):
            out[f"forgetting_{key}{tail}"] = block[key]
    return out


def frames_outside(test_files: Mapping[str, Sequence[str | Path]], inside: str, per_set: int = PER_TEST_FILE) -> dict[str, list[Atoms]]:
    """Structures of the other datasets (the first `per_set` of each test file), by dataset: what a
    model fine-tuned on `inside` should not forget."""
    from ase.io import read

    out = {}
    for name, paths in test_files.items():
        if name != inside:
            out[name] = [a for path in paths for a in read(path, index=f":{per_set}")]
    return {k: v for k, v in out.items() if v}


class Forgetting:
    """The forgetting measure of many runs of one study: `measure(run, pretrained, dataset)`.

    `test_files` maps each dataset of the study to its test files; one `ForgettingProbe` per
    (pretrained model, dataset) holds the pretrained predictions on the probe set and on the other
    datasets' structures, computed once.
    """

    def __init__(self, test_files: Mapping[str, Sequence[str | Path]]):
        self.test_files = test_files
        self.probes: dict[tuple[str, str], ForgettingProbe] = {}

    def measure(self, run: str | Path, pretrained: str, dataset: str) -> dict:
        """Drift of `run` (fine-tuned from `pretrained` on `dataset`) per structure set."""
        if (pretrained, dataset) not in self.probes:
            self.probes[pretrained, dataset] = ForgettingProbe(pretrained, frames_outside(self.test_files, dataset))
        return {"pretrained": pretrained, **self.probes[pretrained, dataset].measure(run)}
