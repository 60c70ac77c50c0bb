"""Public DFT benchmark datasets: list them, download (online) or import (`--from`) them, verified by sha256."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from optbench.data.io import LabelKeys, read_frames
from optbench.data.manifest import load_manifest, sha256_file
from optbench.errors import InputError
from optbench.io import read_json, write_json
from optbench.regimes import REGIMES

BOTNET = "https://raw.githubusercontent.com/davkovacs/BOTNet-datasets/main"


@dataclass(frozen=True)
class Split:
    file: str  # path inside the dataset folder
    tag: str  # train | valid | ID | OOD
    sha256: str | None = None  # None: not pinned yet (recorded, not verified, on first fetch)


@dataclass(frozen=True)
class PublicDataset:
    name: str
    regime: str
    description: str
    reference: str
    source: str  # base URL of the files
    homepage: str
    licence: str
    citation: str
    splits: dict[str, Split]
    keys: dict[str, str] = field(default_factory=lambda: {"energy": "energy", "forces": "forces"})
    extra_files: dict[str, str | None] = field(default_factory=dict)  # file -> sha256 (isolated atoms, docs)
    convert: str | None = None  # name in CONVERTERS: rewrites the raw files as extxyz in eV, Å
    note: str = ""

    @property
    def pinned(self) -> bool:
        return all(s.sha256 for s in self.splits.values()) and all(self.extra_files.values())


def _s(file, tag, sha=None):
    return Split(file, tag, sha)


PUBLIC: dict[str, PublicDataset] = {d.name: d for d in [
    PublicDataset(
        name="ethanol_revmd17", regime="molecular",
        description="ethanol from revised MD17 (rMD17) geometries re-labelled with PBE/def2-SVP; OOD: H removal, normal-mode scans, dimers, methanol",
        reference="DFT PBE/def2-SVP (ORCA 4.2, VeryTightSCF)",
        source=f"{BOTNET}/dataset_ethanol", homepage="https://github.com/davkovacs/BOTNet-datasets",
        licence="MIT", citation="Batatia et al., arXiv:2205.06643 (BOTNet); Christensen & von Lilienfeld, MLST 1, 045018 (2020)",
        splits={
            "train": _s("train.xyz", "train", "a26a16d8910581fa321fedc3bd3dfe31f2460e8cbfdc7a8f65243f4fd7250dd0"),
            "test_md": _s("test_MD.xyz", "ID", "b8726933d5b9083989d8e3cc7013c18e0950cf0cbc6f6cd570fdb9759001031c"),
            "ood_h_removal": _s("test_H_removal.xyz", "OOD", "8d9f13272eb1c7570edaf6afc31e6f8670df38c41b82611504878576708b1a1c"),
            "ood_norm_mode_874": _s("test_norm_mode_874.xyz", "OOD", "13f363e0c141dc25af4d8f59668623a27e024c781a07a52f8565fc6bb0e58f99"),
            "ood_norm_mode_3005": _s("test_norm_mode_3005.xyz", "OOD", "9412f0ac3562ee3f307e823eae5f6a9b793e1805feea908f58c9d24a0068f6b0"),
            "ood_dimers": _s("test_dimers.xyz", "OOD", "6beaf368c2caed6493a39c643438317246926675f14b188b7a2dcbd7868f7342"),
            "ood_eth_meth": _s("test_eth_meth.xyz", "OOD", "e9109584eb66d2ffe7509dd792c436e4b54bed2583a4de555bda9b2cd4799adf"),
            "train_eth_meth": _s("train_eth_meth.xyz", "train", "2aea243261f05b7d556cca37d73de335a98573d198441f32dc6f835cd948e3a0"),
        },
        extra_files={"isolated_atoms.xyz": "a2a662390f31ad623ce493038e680bc34214f88d4432566bf8fbd0761be57583",
                     "LICENSE": "62de1b18d798144e2dfddfdd63e8fd1f7ceccfaaf91540e4a305727a016ee3bb"},
    ),
    PublicDataset(
        name="3bpa", regime="molecular",
        description="3-(benzyloxy)pyridin-2-amine: train at 300 K or mixed T, test at 300/600/1200 K and dihedral scans",
        reference="DFT wB97X/6-31G(d) (ORCA)",
        source=f"{BOTNET}/dataset_3BPA", homepage="https://github.com/davkovacs/BOTNet-datasets",
        licence="MIT", citation="Kovacs et al., JCTC 17, 7696 (2021)",
        splits={"train": _s("train_300K.xyz", "train"), "train_mixedT": _s("train_mixedT.xyz", "train"),
                "test_300K": _s("test_300K.xyz", "ID"), "ood_600K": _s("test_600K.xyz", "OOD"),
                "ood_1200K": _s("test_1200K.xyz", "OOD"), "ood_dih_beta": _s("test_dih_beta.xyz", "OOD")},
        extra_files={"iso_atoms.xyz": None},
    ),
    PublicDataset(
        name="acetylacetone", regime="molecular",
        description="acetylacetone: xTB-MD geometries at 300/600 K; OOD: proton-transfer NEB path, dihedral scan",
        reference="DFT UHF PBE+D3/def2-SVP (ORCA 5.0)",
        source=f"{BOTNET}/dataset_acac", homepage="https://github.com/davkovacs/BOTNet-datasets",
        licence="MIT", citation="Batatia et al., arXiv:2205.06643 (BOTNet)",
        splits={"train": _s("train_300K.xyz", "train"), "train_600K": _s("train_600K.xyz", "train"),
                "test_300K": _s("test_MD_300K.xyz", "ID"), "ood_600K": _s("test_MD_600K.xyz", "OOD"),
                "ood_h_transfer": _s("test_H_transfer.xyz", "OOD"), "ood_dihedral": _s("test_dihedral.xyz", "OOD")},
        extra_files={"isolated_atoms.xyz": None},
    ),
    PublicDataset(
        name="water_revpbe0", regime="liquid",
        description="1593 liquid-water boxes of 64 molecules (training set of the Cheng et al. water NNP)",
        reference="DFT revPBE0-D3 (CP2K)",
        source="https://raw.githubusercontent.com/BingqingCheng/ab-initio-thermodynamics-of-water/master/training-set",
        homepage="https://github.com/BingqingCheng/ab-initio-thermodynamics-of-water",
        licence="see source repository", citation="Cheng, Engel, Behler, Dellago & Ceriotti, PNAS 116, 1110 (2019)",
        splits={"train": _s("dataset_1593.xyz", "train")},
        keys={"energy": "TotEnergy", "forces": "force"},
        convert="hartree_bohr",
        note="raw file is in Hartree and Bohr; converted on import to train.extxyz in eV and Å with plain keys",
    ),
    PublicDataset(
        name="si_gap18", regime="crystal",
        description="Si-GAP-18 training database: bulk phases, surfaces, defects, liquid and amorphous Si (2475 cells)",
        reference="DFT PW91 (CASTEP)",
        source="https://raw.githubusercontent.com/libAtoms/silicon-testing-framework/master/models/GAP",
        homepage="https://doi.org/10.5281/zenodo.1250555",
        licence="CC BY-NC-SA 4.0", citation="Bartok, Kermode, Bernstein & Csanyi, PRX 8, 041048 (2018)",
        splits={"train": _s("gp_iter6_sparse9k.xml.xyz", "train")},
        keys={"energy": "dft_energy", "forces": "dft_force", "virial": "dft_virial"},
    ),
]}

def _hartree_bohr(folder: Path, d: PublicDataset) -> tuple[dict[str, Split], dict[str, str]]:
    """Rewrite each split (Hartree, Bohr; keys d.keys) as extxyz in eV and Å with plain keys."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.units import Bohr, Hartree

    from optbench.io import write_extxyz

    splits = {}
    for name, s in d.splits.items():
        frames = read_frames(folder / s.file, LabelKeys(**d.keys))
        images = []
        for f in frames:
            a = f.atoms.copy()
            a.set_cell(a.cell * Bohr, scale_atoms=False)
            a.positions = a.positions * Bohr
            a.calc = SinglePointCalculator(a, energy=f.energy * Hartree, forces=f.forces * Hartree / Bohr)
            images.append(a)
        rel = f"{name}.extxyz"
        write_extxyz(folder / rel, images)
        splits[name] = Split(rel, s.tag, None)
    return splits, {"energy": "energy", "forces": "forces"}


CONVERTERS = {"hartree_bohr": _hartree_bohr}

def format_listing() -> str:
    """Table of the built-in suite and the public datasets (source, licence, keys, sha256)."""
    lines = ["Built-in suite (shipped --size small; `optbench data generate REGIME --size full --out DIR`):"]
    for regime in REGIMES.values():
        folder = regime.path()
        man = load_manifest(folder) if (folder / "manifest.json").is_file() else None
        if man:
            counts = ", ".join(f"{n}:{s['tag']}:{s['count']}" for n, s in man["splits"].items())
            lines.append(f"  {regime.name:<10} {man['reference']['method']:<9} {counts}")
            lines.append(f"  {'':<10} {folder}")
        else:
            lines.append(f"  {regime.name:<10} {regime.description} (not generated yet)")
    lines.append("")
    lines.append("Public datasets (`optbench data fetch NAME --out DIR`, or `--from PATH` for a local copy):")
    for d in PUBLIC.values():
        keys = ", ".join(f"{k}={v}" for k, v in d.keys.items())
        lines.append(f"  {d.name}  [{d.regime}]  {d.description}")
        lines.append(f"      reference: {d.reference}   licence: {d.licence}   keys: {keys}")
        lines.append(f"      source: {d.source}")
        lines.append(f"      cite: {d.citation}")
        if d.note:
            lines.append(f"      note: {d.note}")
        for name, s in d.splits.items():
            lines.append(f"      {name:<20} {s.tag:<5} {s.file:<28} sha256 {s.sha256 or 'not pinned (recorded on first fetch)'}")
    return "\n".join(lines)


def _get(name: str) -> PublicDataset:
    if name not in PUBLIC:
        raise InputError(f"unknown dataset '{name}' (known: {', '.join(PUBLIC)}; see `optbench data list`)", field="name")
    return PUBLIC[name]


def _files(d: PublicDataset) -> dict[str, str | None]:
    out = {s.file: s.sha256 for s in d.splits.values()}
    out.update(d.extra_files)
    return out


def _check_online(url: str, name: str) -> None:
    """Fail at once, with the way out, when the host cannot be reached."""
    hint = (f"download the files listed by `optbench data list` elsewhere, then import them with "
            f"`optbench data fetch {name} --from PATH --out DIR`")
    if os.environ.get("OPTBENCH_OFFLINE"):
        raise InputError(f"offline (OPTBENCH_OFFLINE is set): cannot download '{name}'; {hint}", field="name")
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as err:
        raise InputError(f"offline: cannot reach {host} ({err}); {hint}", field="name") from None


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:
        shutil.copyfileobj(resp, fh)


def fetch(name: str, out: str | Path, from_path: str | Path | None = None) -> Path:
    """Download public dataset `name` (or import it from the folder `from_path`) into `out`,
    verify every pinned sha256, validate the labels and write manifest.json; returns `out`."""
    d = _get(name)
    out = Path(out)
    if (out / "manifest.json").is_file() and read_json(out / "manifest.json").get("name") == name:
        return out
    if out.exists() and any(out.iterdir()):
        raise InputError("output folder is not empty", file=out, field="--out")
    if from_path is None:
        _check_online(d.source, name)
    else:
        from_path = Path(from_path)
        if not from_path.is_dir():
            raise InputError("--from must be a folder holding the dataset's files", file=from_path, field="--from")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shas = _collect(d, name, tmp, from_path)
        split_files, keys = dict(d.splits), dict(d.keys)
        if d.convert:
            split_files, keys = CONVERTERS[d.convert](tmp, d)
        splits, alternatives = _split_entries(split_files, keys, tmp, shas)
        write_json(tmp / "manifest.json", _manifest(d, name, keys, splits, alternatives, shas, from_path))
        _publish(tmp, out)
    except InputError as err:  # name the user's file (or URL), never the deleted temporary copy
        shutil.rmtree(tmp, ignore_errors=True)
        if err.file is None or not err.file.startswith(str(tmp)):
            raise
        rel = Path(err.file).relative_to(tmp)
        origin = from_path / rel if from_path is not None else f"{d.source}/{rel}"
        raise InputError(err.message, file=origin, field=err.field) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _collect(d, name: str, tmp: Path, from_path: Path | None) -> dict[str, str]:
    """Download (or copy from `from_path`) every file of `d` into `tmp`; their sha256, each checked
    against its pin."""
    shas = {}
    for rel, expected in _files(d).items():
        target = tmp / rel
        if from_path is None:
            _download(f"{d.source}/{rel}", target)
            origin = f"{d.source}/{rel}"
        else:
            src = from_path / rel
            if not src.is_file():
                raise InputError(f"file '{rel}' of {name} is missing", file=src, field="--from")
            shutil.copyfile(src, target)
            origin = src
        sha = sha256_file(target)
        if expected and sha != expected:
            raise InputError(f"sha256 mismatch: expected {expected}, got {sha}", file=origin, field="sha256")
        shas[rel] = sha
    return shas


def _split_entries(split_files: dict, keys: dict, tmp: Path, shas: dict) -> tuple[dict, dict]:
    """Manifest entries of the splits (frames read and validated) and of the alternative training sets."""
    splits, alternatives = {}, {}
    for split, s in split_files.items():
        frames = read_frames(tmp / s.file, LabelKeys(**keys))
        sha = shas.get(s.file) or sha256_file(tmp / s.file)
        # one split is tagged train; other training sets are offered beside it, not mixed in
        target = alternatives if s.tag == "train" and split != "train" else splits
        target[split] = {"file": s.file, "tag": s.tag, "count": len(frames), "sha256": sha}
    return splits, alternatives


def _manifest(d, name: str, keys: dict, splits: dict, alternatives: dict, shas: dict, from_path) -> dict:
    return {
        "name": name, "regime": d.regime, "seed": None, "size": "full", "description": d.description,
        "reference": {"method": d.reference, "code": "external (not recomputable offline)"},
        "keys": keys, "units": {"energy": "eV", "forces": "eV/Å"}, "train_split": "train",
        "splits": splits, "alternative_train_splits": alternatives, "structures": {}, "reference_properties": {},
        "files": shas, "converted": d.convert, "note": d.note,
        "source": d.source, "homepage": d.homepage, "licence": d.licence, "citation": d.citation,
        "sha256_pinned": d.pinned, "imported_from": str(from_path) if from_path else None,
    }


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished temporary folder to `out`, as readable as any folder the user makes."""
    if out.exists():
        out.rmdir()
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 700; a dataset folder is as readable as any other
    os.replace(tmp, out)
