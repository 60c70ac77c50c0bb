"""Export a study for publication: what its report is built from and the report itself, without weights.

`export_study(STUDY_DIR, DEST)` copies into DEST (which must not exist, or be empty):

- the report: report.md, report.html, results.csv, claims.md (when written), figures/;
- what the report is rebuilt from: study.json, study.yaml, every trial's results.json and metrics.jsonl
  (crash.json and error.txt of a crashed trial), the analyses' JSON records (properties, curvature,
  forgetting, failed attempts with their tracebacks; not their PNGs or phonopy's band.yaml), the LR range
  tests (lr_range/), and each dataset's manifest.json (its reference values; datasets/<name>/manifest.json);
- run.json: the exact command of each `optbench run` session, the git commit and package versions it ran
  with, the study's wall time (sum over its sessions), and where and when the export was made.

Paths into optbench's built-in suites are written from the package's folder on
(`optbench/suite/crystal/train.extxyz`), in every text file of the export alike and byte for byte
otherwise, so that an export names no folder of the machine that ran the study; the sha256 beside
each input path identifies the file.

Never copied: model weights (trials/*/model/), checkpoints, the graph cache, log files. `optbench report
DEST` rebuilds the same tables from the export; figures that need more (the phonon reference bars) read
the exported manifests.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from optbench.errors import InputError
from optbench.io import write_json
from optbench.layout import RunDir, StudyDir
from optbench.report.claims_text import CLAIMS_MD

RUN_JSON = "run.json"  # the export's provenance record
DATASETS = "datasets"  # DEST/datasets/<name>/manifest.json: each dataset's manifest (reference values)
TRIAL_FILES = (RunDir.RESULTS, RunDir.METRICS, RunDir.CRASH, RunDir.ERROR)
ANALYSIS_SUFFIXES = (".json", ".txt")  # records and tracebacks; figures and band.yaml stay behind
TEXT_SUFFIXES = (".json", ".jsonl", ".txt", ".csv", ".md", ".html", ".yaml")  # where package paths are rewritten


def _suite_paths():
    """Absolute paths into a built-in suite (`/any/folders/optbench/suite/...`, wherever the package sat
    when the study ran), as a bytes pattern whose match is the part to cut."""
    import re

    import optbench

    marker = f"{Path(optbench.__file__).resolve().parent.name}/suite/".encode()
    return re.compile(rb"(?:/[^/\s\"']+)+/(?=" + re.escape(marker) + rb")")


def _copy(src: Path, dst: Path, suite_paths) -> None:
    """Copy one file, byte for byte but for the folders before `optbench/suite/` in a text file's paths."""
    if dst.suffix not in TEXT_SUFFIXES:
        shutil.copy2(src, dst)
        return
    dst.write_bytes(suite_paths.sub(b"", src.read_bytes()))
    shutil.copystat(src, dst)


def exported_manifest(study: StudyDir, dataset: str) -> Path:
    """Where an export keeps a dataset's manifest.json."""
    return study.path / DATASETS / dataset / "manifest.json"


def _files(src: StudyDir) -> list[Path]:
    """Every file to copy, relative to the study folder."""
    root = src.path
    files = [Path(name) for name in (StudyDir.INDEX, StudyDir.CONFIG, StudyDir.RESULTS_CSV, StudyDir.REPORT_MD,
                                     StudyDir.REPORT_HTML, CLAIMS_MD) if (root / name).is_file()]
    for folder in (src.figures_dir, root / StudyDir.LR_RANGE):
        files += [p.relative_to(root) for p in sorted(folder.rglob("*")) if p.is_file()] if folder.is_dir() else []
    for trial in src.trials():
        files += [p.relative_to(root) for p in (trial.run.path / name for name in TRIAL_FILES) if p.is_file()]
    if src.analyses_dir.is_dir():
        files += [p.relative_to(root) for p in sorted(src.analyses_dir.rglob("*"))
                  if p.is_file() and p.suffix in ANALYSIS_SUFFIXES]
    return files


def export_study(folder: str | Path, dest: str | Path) -> dict:
    """Copy a study's publishable files to `dest` and write dest/run.json; returns run.json's content."""
    from optbench.provenance import command_line, git_commit, package_versions

    src, dest = StudyDir(folder), Path(dest)
    if not src.is_study():
        raise InputError(f"not a study folder (no {StudyDir.INDEX})", file=src.path, field="folder")
    if not src.report_md.is_file():
        raise InputError(f"the study has no report yet ({StudyDir.REPORT_MD}); run `optbench report {src.path}` first",
                         file=src.path, field="folder")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InputError("destination exists and is not an empty folder", file=dest, field="dest")
    if dest.resolve() == src.path.resolve() or src.path.resolve() in dest.resolve().parents:
        raise InputError("destination lies inside the study folder", file=dest, field="dest")
    files = _files(src)
    tmp = dest.with_name(f".{dest.name}.export.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    suite_paths = _suite_paths()
    for rel in files:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        _copy(src.path / rel, tmp / rel, suite_paths)
    index = src.index()
    for name, ds in (index.get("datasets") or {}).items():
        manifest = Path(ds["folder"]) / "manifest.json" if ds.get("folder") else None
        if manifest is not None and manifest.is_file():
            target = exported_manifest(StudyDir(tmp), name)
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(manifest, target, suite_paths)
    sessions = index.get("sessions") or []
    record = {
        "study": index.get("name"), "study_hash": index.get("study_hash"),
        "commands": [s.get("command") for s in sessions] or [index.get("provenance", {}).get("command")],
        "git": sessions[-1].get("git") if sessions else None,
        "versions": sessions[-1].get("versions") if sessions else index.get("provenance", {}).get("versions"),
        "wall_time_s": round(sum(s.get("total_s") or 0.0 for s in sessions), 2) if sessions else None,
        "sessions": sessions,
        "trials": len(index.get("trials", [])),
        "exported": {"from": str(src.path.resolve()), "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "command": command_line(), "git": git_commit(), "versions": package_versions(), "files": len(files)},
        "paths": "paths into optbench's built-in suites start at the package's folder (optbench/suite/...)",
        "not_exported": "model weights (trials/*/model/), checkpoints, the graph cache (cache/), log files, "
                        "the analyses' figures and phonopy band.yaml files",
    }
    write_json(tmp / RUN_JSON, record)
    if dest.exists():
        dest.rmdir()
    tmp.rename(dest)
    return record
