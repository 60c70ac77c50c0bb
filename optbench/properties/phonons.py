"""Harmonic phonons through phonopy: band structure (seekpath path), mesh DOS, imaginary modes."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import seekpath
from ase import Atoms
from phonopy import Phonopy
from phonopy.phonon.band_structure import get_band_qpoints_by_seekpath
from phonopy.structure.atoms import PhonopyAtoms
from tqdm.auto import tqdm

from optbench.errors import InputError
from optbench.progress import hidden
from optbench.properties.base import Property, attach, relax, require, require_periodic_3d


def supercell_matrix(cell: np.ndarray, supercell, min_length: float) -> np.ndarray:
    """3x3 integer supercell matrix: `supercell` as given (n, 3 ints or 3x3), or each lattice
    vector repeated until it is at least `min_length` Å long."""
    if supercell is None:
        lengths = np.linalg.norm(cell, axis=1)
        return np.diag(np.maximum(1, np.ceil(min_length / lengths - 1e-9)).astype(int))
    try:
        arr = np.array(supercell, dtype=int)
    except (TypeError, ValueError):
        raise InputError(f"supercell must be an int, 3 ints or a 3x3 matrix, got {supercell}", field="supercell") from None
    if arr.ndim == 0:
        return np.eye(3, dtype=int) * int(arr)
    if arr.shape == (3,):
        return np.diag(arr)
    if arr.shape == (3, 3):
        return arr
    raise InputError(f"supercell must be an int, 3 ints or a 3x3 matrix, got {supercell}", field="supercell")


def to_phonopy_atoms(atoms: Atoms) -> PhonopyAtoms:
    return PhonopyAtoms(numbers=atoms.numbers, cell=atoms.cell.array, scaled_positions=atoms.get_scaled_positions())


def to_ase(cell: PhonopyAtoms) -> Atoms:
    return Atoms(numbers=cell.numbers, cell=cell.cell, scaled_positions=cell.scaled_positions, pbc=True)


def standard_primitive(atoms: Atoms, symprec: float) -> tuple[Atoms, dict]:
    """seekpath's standardised primitive cell of `atoms` and its path dictionary."""
    path = seekpath.get_path((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers), symprec=symprec)
    prim = Atoms(numbers=path["primitive_types"], cell=path["primitive_lattice"],
                 scaled_positions=path["primitive_positions"], pbc=True)
    return prim, path


def band_yaml(ph: Phonopy) -> str:
    """The text of phonopy's band.yaml for the band structure `ph` has run (its own writer, in a scratch folder)."""
    with tempfile.TemporaryDirectory(prefix="optbench-band-") as tmp:
        path = Path(tmp) / "band.yaml"
        ph.write_yaml_band_structure(filename=path)
        return path.read_text()


def displaced_forces(ph: Phonopy, calculator, subtract_residual: bool, progress: bool) -> np.ndarray:
    """Forces (eV/Å) on phonopy's displaced supercells, minus those on the perfect supercell."""
    forces = []
    for sc in tqdm(ph.supercells_with_displacements, desc="phonon displacements", disable=hidden(progress), leave=False):
        forces.append(attach(to_ase(sc), calculator).get_forces())
    forces = np.array(forces)
    if subtract_residual:
        forces -= attach(to_ase(ph.supercell), calculator).get_forces()[None]
    return forces


@dataclasses.dataclass
class Phonons(Property):
    """Phonon band structure and DOS (THz) from finite displacements with phonopy.

    Result: "high_symmetry_THz" {label: sorted frequencies}, "high_symmetry_q" {label: reduced q},
    "gamma_acoustic_THz" (the three acoustic frequencies at Gamma), "min_frequency_THz" (band and
    mesh), "imaginary_modes" [{"label" or "q", "frequency_THz"}], "has_imaginary", "band"
    (per segment: "distances" 1/Å, "frequencies" THz, "labels"), "dos" ("frequency_THz",
    "dos" states/THz per primitive cell), "supercell_matrix", "n_displacements", "relax".
    Negative frequencies stand for imaginary ones. Artefacts: band.yaml (phonopy's), band.png, dos.png.
    """

    name = "phonons"
    supercell: Any = None  # int, 3 ints or 3x3; None -> min_length rule on the primitive cell
    min_length: float = 7.0  # Å
    displacement: float = 0.01  # Å
    mesh: tuple[int, int, int] = (12, 12, 12)
    band_points: int = 51  # q-points per path segment
    relax_cell: bool = True
    fmax: float = 0.001  # eV/Å
    relax_steps: int = 300
    symprec: float = 1e-3
    subtract_residual_forces: bool = True
    imaginary_tol: float = 0.05  # THz; frequencies below -tol are imaginary (Gamma acoustic excluded)
    progress: bool = True

    def validate(self) -> None:
        supercell_matrix(np.eye(3), self.supercell, self.min_length)
        require(self.min_length > 0, "min_length", f"must be > 0 Å, got {self.min_length}")
        require(self.displacement > 0, "displacement", f"must be > 0 Å, got {self.displacement}")
        require(len(self.mesh) == 3 and all(isinstance(m, (int, np.integer)) and m >= 1 for m in self.mesh), "mesh",
                f"must be 3 whole numbers >= 1, got {list(self.mesh)}")
        require(self.band_points >= 2, "band_points", f"must be >= 2 per segment, got {self.band_points}")
        require(self.fmax > 0, "fmax", f"must be > 0 eV/Å, got {self.fmax}")
        require(self.relax_steps >= 0, "relax_steps", f"must be >= 0, got {self.relax_steps}")
        require(self.symprec > 0, "symprec", f"must be > 0, got {self.symprec}")

    def build(self, atoms: Atoms, calculator) -> tuple[Phonopy, dict, dict]:
        """Relax, standardise and return the phonopy object with force constants (symmetrised)."""
        require_periodic_3d(atoms, "phonons need")
        base = attach(atoms, calculator)
        relax_info = relax(base, cell=self.relax_cell, fmax=self.fmax, steps=self.relax_steps)
        prim, path = standard_primitive(base, self.symprec)
        ph = Phonopy(to_phonopy_atoms(prim), supercell_matrix=supercell_matrix(prim.cell.array, self.supercell, self.min_length),
                     primitive_matrix=None, symprec=self.symprec)
        ph.generate_displacements(distance=self.displacement)
        ph.forces = displaced_forces(ph, calculator, self.subtract_residual_forces, self.progress)
        ph.produce_force_constants()
        ph.symmetrize_force_constants(show_drift=False)
        return ph, path, relax_info

    def calc(self, atoms: Atoms, calculator) -> dict[str, Any]:
        return self._compute(atoms, calculator)[0]

    def calc_with_artefacts(self, atoms: Atoms, calculator) -> tuple[dict[str, Any], dict[str, Any]]:
        result, ph = self._compute(atoms, calculator)
        return result, {"band.yaml": band_yaml(ph), **self.artefacts(result)}

    def artefacts(self, result: dict[str, Any]) -> dict[str, Any]:
        """band.png and dos.png (band.yaml needs the phonopy object: `calc_with_artefacts`)."""
        from optbench.properties.plots import band_figure, dos_figure

        return {"band.png": band_figure(result["band"]), "dos.png": dos_figure(result["dos"])}

    def _compute(self, atoms: Atoms, calculator) -> tuple[dict[str, Any], Phonopy]:
        """The result and the phonopy object it came from (band structure and mesh run)."""
        ph, path, relax_info = self.build(atoms, calculator)
        bands, latex_labels, connections = get_band_qpoints_by_seekpath(ph.primitive, self.band_points)
        ph.run_band_structure(bands, labels=latex_labels, path_connections=connections)
        band = ph.get_band_structure_dict()
        ph.run_mesh(list(self.mesh), is_gamma_center=True)
        ph.run_total_dos()
        dos = ph.get_total_dos_dict()
        mesh_freqs = ph.get_mesh_dict()["frequencies"]

        labels = list(dict.fromkeys(lbl for seg in path["path"] for lbl in seg))
        hs = {lbl: np.sort(ph.get_frequencies(path["point_coords"][lbl])) for lbl in labels}
        gamma = np.sort(ph.get_frequencies([0.0, 0.0, 0.0]))
        acoustic = gamma[np.argsort(np.abs(gamma))[:3]]
        imaginary = []
        for lbl, freqs in hs.items():
            gamma_point = np.allclose(path["point_coords"][lbl], 0.0)
            for f in (freqs[3:] if gamma_point else freqs):
                if f < -self.imaginary_tol:
                    imaginary.append({"label": lbl, "frequency_THz": float(f)})
        band_min = min(float(np.min(f)) for f in band["frequencies"])
        mesh_q = ph.get_mesh_dict()["qpoints"]
        for q, freqs in zip(mesh_q, mesh_freqs, strict=True):
            fs = np.sort(freqs)[3:] if np.allclose(q, 0.0) else freqs
            if len(fs) and fs.min() < -self.imaginary_tol:
                imaginary.append({"q": q, "frequency_THz": float(fs.min())})
        result = {
            "settings": self.settings(),
            "high_symmetry_THz": hs,
            "high_symmetry_q": {lbl: path["point_coords"][lbl] for lbl in labels},
            "gamma_acoustic_THz": acoustic,
            "gamma_acoustic_max_abs_THz": float(np.abs(acoustic).max()),
            "min_frequency_THz": min(band_min, float(np.min(mesh_freqs))),
            "max_frequency_THz": float(np.max(mesh_freqs)),
            "imaginary_modes": imaginary,
            "has_imaginary": bool(imaginary),
            "band": {"distances": band["distances"], "frequencies": band["frequencies"],
                     "labels": latex_labels, "path_connections": connections},
            "dos": {"frequency_THz": dos["frequency_points"], "dos": dos["total_dos"]},
            "supercell_matrix": ph.supercell_matrix,
            "n_atoms_primitive": len(ph.primitive),
            "n_atoms_supercell": len(ph.supercell),
            "n_displacements": len(ph.supercells_with_displacements),
            "relax": relax_info,
        }
        return result, ph

    @staticmethod
    def compare(result: dict, reference: dict) -> dict[str, Any]:
        """MAE (THz) of sorted frequencies at the high-symmetry points both results hold."""
        a, b = result.get("high_symmetry_THz") or {}, reference.get("high_symmetry_THz") or {}
        per_point, diffs = {}, []
        for lbl in a:
            if lbl in b and len(a[lbl]) == len(b[lbl]):
                d = np.abs(np.asarray(a[lbl], float) - np.asarray(b[lbl], float))
                per_point[lbl] = float(d.mean())
                diffs.append(d)
        out: dict[str, Any] = {"high_symmetry_MAE_THz": float(np.concatenate(diffs).mean()) if diffs else None,
                               "per_point_MAE_THz": per_point}
        for key in ("min_frequency_THz", "max_frequency_THz"):
            if isinstance(result.get(key), (int, float)) and isinstance(reference.get(key), (int, float)):
                out[key.replace("_THz", "_error_THz")] = float(result[key] - reference[key])
        out["imaginary_model"] = bool(result.get("has_imaginary"))
        out["imaginary_reference"] = bool(reference.get("has_imaginary"))
        return out
