"""Plane-wave DFT reference with GPAW: PAW setups for the functional, k-point grids, convergence record."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes, kptdensity2monkhorstpack
from ase.units import GPa

from optbench.errors import BackboneError, InputError

# Every setting that changes a label; written in full into each manifest.
GPAW_DEFAULTS = {
    "xc": "PBEsol",
    "ecut_eV": 400.0,  # plane-wave cutoff (450 -> 550 eV changes Si labels by < 0.01 meV/atom, 0.1 meV/Å)
    # Monkhorst-Pack grid: N_i = ceil(2 pi |b_i| * density), ASE's convention (Si primitive cell: 9x9x9,
    # 8-atom cube: 5x5x5). Si, rattled and strained: 4.0 vs 4.5 (even grid) differ by 0.11 meV/atom,
    # 1.5 meV/Å, 0.02 GPa; the manifest's convergence record judges every crystal against DENSER.
    "kpoint_density_per_A": 4.0,
    # Cold smearing for the metal: Al with Fermi-Dirac 0.05 eV missed the stress tolerance by 3x at this
    # density (0.67 GPa), with Marzari-Vanderbilt 0.1 eV by 5x (1.07 GPa, 4 vs 5 per Å^-1); the gapped
    # crystals (Si, NaCl) do not feel it.
    "smearing": "marzari-vanderbilt",
    "smearing_width_eV": 0.2,
    "scf_energy_eV_per_electron": 1e-7,
    "scf_density": 1e-6,
    "energy_label": "free_energy",  # force-consistent (Mermin) energy, so that forces are its gradient
    "setups": "PAW generated with gpaw-setup for the functional (default generator parameters)",
}
SMEARINGS = ("fermi-dirac", "marzari-vanderbilt")
# The denser setting the convergence record compares against.
DENSER = {"ecut_eV": 500.0, "kpoint_density_per_A": 5.5}
# Tolerances of the convergence record (per setting above vs DENSER).
TOLERANCES = {"energy_meV_per_atom": 1.0, "forces_meV_per_A": 10.0, "stress_GPa": 0.2}


def setups_dir() -> Path:
    """Folder of the generated PAW setups: $OPTBENCH_GPAW_SETUPS or ~/.cache/optbench/gpaw-setups/<gpaw version>."""
    env = os.environ.get("OPTBENCH_GPAW_SETUPS")
    if env:
        return Path(env)
    import gpaw

    return Path.home() / ".cache" / "optbench" / "gpaw-setups" / gpaw.__version__


def ensure_setups(symbols, xc: str) -> Path:
    """Generate (once, offline, seconds each) the `xc` PAW setups of `symbols`; returns their folder,
    which is also put first on GPAW's setup path."""
    from gpaw import setup_paths

    folder = setups_dir()
    missing = sorted({s for s in symbols if not (folder / f"{s}.{xc}").is_file()})
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".gen.", dir=folder))
        try:
            code = "import sys; from gpaw.atom.gpaw_setup import main; sys.argv[0] = 'gpaw-setup'; sys.exit(main())"
            run = subprocess.run([sys.executable, "-c", code, "-f", xc, *missing], cwd=tmp, capture_output=True, text=True)
            if run.returncode != 0:
                tail = " ".join(run.stderr.split())[-300:]
                raise BackboneError(f"gpaw-setup -f {xc} {' '.join(missing)} failed (exit {run.returncode}): {tail}")
            for s in missing:
                os.replace(tmp / f"{s}.{xc}", folder / f"{s}.{xc}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if str(folder) not in map(str, setup_paths):
        setup_paths.insert(0, str(folder))
    return folder


def kpoint_grid(atoms, density: float) -> list[int]:
    """Monkhorst-Pack sizes for `density` k-points per Å^-1 (ASE's kptdensity convention, 2 pi included)."""
    return [int(n) for n in kptdensity2monkhorstpack(atoms, kptdensity=density, even=False)]


class GPAWReference(Calculator):
    """GPAW in plane-wave mode for 3D-periodic cells: energy (eV, force-consistent), forces (eV/Å),
    stress (eV/Å^3). Each geometry starts a fresh SCF (labels independent of history). The k-point
    grid comes from the density on the first cell of each atom count this object sees, so a strain or
    volume series (EOS, elastic) shares one grid instead of jumping between grids. With `reuse`
    (relaxations and property series, never labels) one GPAW object carries its wavefunctions between
    geometries of the same atoms, which saves SCF iterations, not accuracy."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, settings: dict, reuse: bool = False):
        super().__init__()
        self.settings = {**GPAW_DEFAULTS, **settings}
        self.reuse = reuse
        self._grids: dict[int, list[int]] = {}
        self._live = None  # (symbols, GPAW) kept between geometries when `reuse`

    def kpts(self, atoms) -> list[int]:
        n = len(atoms)
        if n not in self._grids:
            self._grids[n] = kpoint_grid(atoms, float(self.settings["kpoint_density_per_A"]))
        return self._grids[n]

    def _gpaw(self, atoms):
        from gpaw import GPAW, PW, FermiDirac, MarzariVanderbilt

        s = self.settings
        ensure_setups(set(atoms.get_chemical_symbols()), s["xc"])
        if s["smearing"] not in SMEARINGS:
            raise InputError(f"unknown smearing '{s['smearing']}' (use {' or '.join(SMEARINGS)})", field="reference.smearing")
        occupations = (FermiDirac if s["smearing"] == "fermi-dirac" else MarzariVanderbilt)(float(s["smearing_width_eV"]))
        return GPAW(mode=PW(float(s["ecut_eV"])), xc=s["xc"], kpts={"size": self.kpts(atoms), "gamma": False},
                    occupations=occupations, txt=None,
                    convergence={"energy": float(s["scf_energy_eV_per_electron"]), "density": float(s["scf_density"])})

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if not (self.atoms.pbc.all() and self.atoms.cell.rank == 3):
            raise InputError("the GPAW reference handles 3D-periodic cells only", field="pbc")
        atoms = self.atoms.copy()
        key = tuple(atoms.get_chemical_symbols())
        if self.reuse and self._live is not None and self._live[0] == key:
            try:
                self.results = _labels_with(atoms, self._live[1])
                return
            except _symmetry_broken():  # less symmetry than the geometry GPAW set up for: start afresh
                pass
        calc = self._gpaw(atoms)
        self._live = (key, calc) if self.reuse else None
        self.results = _labels_with(atoms, calc)


def _labels_with(atoms, calc) -> dict:
    atoms = atoms.copy()
    atoms.calc = calc
    free = float(atoms.get_potential_energy(force_consistent=True))
    return {"energy": free, "free_energy": free, "forces": atoms.get_forces(), "stress": atoms.get_stress(voigt=True)}


def _symmetry_broken() -> type[Exception]:
    """GPAW's error for moving atoms off the symmetry a reused calculator was set up with."""
    try:
        from gpaw.new.symmetry import SymmetryBrokenError
    except ImportError:  # older GPAW: nothing to catch
        return ()  # type: ignore[return-value]
    return SymmetryBrokenError


def gpaw_block(**settings) -> dict:
    """The full "reference" block of the GPAW method (code version included)."""
    import gpaw

    block = {"method": "DFT-PBEsol", "code": "gpaw", "code_version": gpaw.__version__, **GPAW_DEFAULTS}
    unknown = set(settings) - set(block)
    if unknown:
        raise InputError(f"unknown settings {sorted(unknown)} for gpaw", field="reference")
    block.update(settings)
    block["method"] = f"DFT-{block['xc']}"
    return block


def _labels(atoms, settings):
    a = atoms.copy()
    a.calc = GPAWReference(settings)
    return a.get_potential_energy() / len(a), a.get_forces(), a.get_stress(voigt=True)


def _pair_difference(frame, base, reference: dict, denser: dict) -> dict:
    (e0, f0, s0), (e1, f1, s1) = (_labels(frame, r) for r in (reference, {**reference, **denser}))
    b0, b1 = (_labels(base, r)[0] for r in (reference, {**reference, **denser}))
    return {
        "formula": frame.get_chemical_formula(), "n_atoms": len(frame),
        "energy_meV_per_atom": abs((e1 - b1) - (e0 - b0)) * 1000,
        "energy_shift_meV_per_atom": abs(e1 - e0) * 1000,
        "forces_meV_per_A": float(np.abs(f1 - f0).max()) * 1000,
        "stress_GPa": float(np.abs(s1 - s0).max() / GPa),
    }


def label_differences(pairs, reference: dict, denser: dict, workers: int = 1) -> list[dict]:
    """Per (frame, base) pair (base: the unperturbed cell of the same atoms), between `reference` and
    `reference` updated with `denser`: the change of the frame's energy relative to its base
    ("energy_meV_per_atom", what labels and properties use: energy differences), the change of the
    absolute energy ("energy_shift_meV_per_atom", a per-element constant, reported not judged), the
    largest force-component change (meV/Å) and the largest stress-component change (GPa, absolute)."""
    args = [(frame, base, reference, denser) for frame, base in pairs]
    if workers > 1:
        from optbench.data.parallel import parallel_map

        return parallel_map(_pair_difference, args, workers, "convergence record")
    return [_pair_difference(*a) for a in args]


def convergence_record(pairs, reference: dict, denser: dict | None = None, workers: int = 1) -> dict:
    """The manifest's convergence record for (frame, base) pairs: settings compared, tolerances,
    per-frame and worst differences, and whether every one is within its tolerance."""
    denser = dict(DENSER if denser is None else denser)
    per_frame = label_differences(pairs, reference, denser, workers)
    worst = {k: max(f[k] for f in per_frame) for k in (*TOLERANCES, "energy_shift_meV_per_atom")}
    return {
        "denser_setting": denser, "tolerances": dict(TOLERANCES), "frames": per_frame, "max": worst,
        "converged": all(worst[k] <= TOLERANCES[k] for k in TOLERANCES),
        "note": "energy: change of E(frame) - E(unperturbed cell) per atom; forces: max component; stress: max "
                "component (absolute); energy_shift: change of the absolute energy per atom (not judged)",
    }


def main(argv: list[str] | None = None) -> int:
    """python -m optbench.data.gpaw_ref SYMBOL ...: generate the PBEsol PAW setups (used by `make install`)."""
    symbols = argv if argv is not None else sys.argv[1:]
    print(f"PAW setups ({GPAW_DEFAULTS['xc']}) in {ensure_setups(symbols, GPAW_DEFAULTS['xc'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
