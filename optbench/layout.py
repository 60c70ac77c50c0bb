"""The run folder and the study folder as typed objects: the only code that knows their file names.

    RUN_DIR/                          STUDY_DIR/
      config.yaml    the FinetuneConfig   study.yaml, study.json (the index of trials)
      zero_shot.json E0 and zero-shot     trials/<config hash>/     one RUN_DIR a trial
      metrics.jsonl  one line a step      analyses/properties/<dataset>/<key>/<structure>/<property>.json
      checkpoints/<tag>.pt                analyses/curvature/<key>/<checkpoint>/curvature.json
      model/         the saved backbone   analyses/forgetting/<key>.json
      results.json   the finished run     lr_range/<dataset>/<backbone>/<optimizer>.json, lr_range/grids.json
      crash.json     a study trial that   cache/, results.csv, report.md, report.html, claims.md, figures/
                     raised               (<key>: a trial's config hash, or pretrained-<backbone>)
      error.txt      its full traceback   (a property's <key> may also be <config hash>@final: the trial's
      log.txt        every log line        weights before the L-BFGS refinement)

Everything else reads and writes these folders through `RunDir` and `StudyDir`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from optbench.errors import InputError
from optbench.io import read_json, to_jsonable

LOG_FILE = "log.txt"  # beside the results of a run and of a study (optbench.provenance.run_log)
CHECKPOINT_TAGS = ("start", "mid", "final", "refined")  # "last" is the resume point, not an analysis checkpoint
PRETRAINED = "pretrained-"  # analysis key of a pretrained model: pretrained-<backbone>
CURVATURE_JSON = "curvature.json"  # what `optbench curvature --out OUT` writes in OUT


def model_folder(path: Path) -> Path:
    """The folder that holds a saved backbone: RUN_DIR/model for a run folder, else `path` itself."""
    from optbench.backbones.base import BACKBONE_FILE

    path = Path(path)
    return path / RunDir.MODEL if (path / RunDir.MODEL / BACKBONE_FILE).is_file() else path


class _Folder:
    """A folder known by its path: `os.fspath` gives the path, repr names the class."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)


class RunDir(_Folder):
    """One fine-tuning run's folder (`optbench finetune --out RUN_DIR`, or a study's trial)."""

    RESULTS, METRICS, CONFIG, ZERO_SHOT = "results.json", "metrics.jsonl", "config.yaml", "zero_shot.json"
    CHECKPOINTS, MODEL, CRASH, ERROR = "checkpoints", "model", "crash.json", "error.txt"
    ENTRIES = (RESULTS, METRICS, CONFIG, ZERO_SHOT, CHECKPOINTS, MODEL, CRASH, ERROR)  # --restart removes these
    KEEP = (RESULTS, CHECKPOINTS)  # a folder holding one of these is never removed after an error

    # ---- paths
    @property
    def results_path(self) -> Path:
        return self.path / self.RESULTS

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def zero_shot_path(self) -> Path:
        return self.path / self.ZERO_SHOT

    @property
    def crash_path(self) -> Path:
        return self.path / self.CRASH

    @property
    def error_path(self) -> Path:
        """Full traceback of a study trial that raised (named by crash.json's "error_file")."""
        return self.path / self.ERROR

    @property
    def model_dir(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    def checkpoint(self, tag: str) -> Path:
        """checkpoints/<tag>.pt (start, mid, final, refined; last: the resume point)."""
        return self.checkpoints_dir / f"{tag}.pt"

    def checkpoints(self) -> list[str]:
        """Tags of the checkpoints this run holds, sorted."""
        return sorted(p.stem for p in self.checkpoints_dir.glob("*.pt")) if self.checkpoints_dir.is_dir() else []

    # ---- records
    def results(self) -> dict | None:
        """results.json of a finished run, None before."""
        return read_json(self.results_path) if self.results_path.exists() else None

    def crash(self) -> dict | None:
        """crash.json of a study trial that raised, None otherwise."""
        return read_json(self.crash_path) if self.crash_path.exists() else None

    def zero_shot(self) -> dict:
        return read_json(self.zero_shot_path)

    def completed(self) -> bool:
        res = self.results()
        return res is not None and res.get("status") == "completed"

    def metrics(self) -> list[dict]:
        """metrics.jsonl: one record a training step and one a validation, in order ([] when absent)."""
        path = self.metrics_path
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def start_metrics(self) -> None:
        self.metrics_path.write_text("")

    def append_metrics(self, record: dict) -> None:
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(to_jsonable(record)) + "\n")

    def truncate_metrics(self, n: int) -> None:
        """Keep the first `n` records (a resumed run drops what it logged after its last checkpoint)."""
        if not self.metrics_path.exists():
            return
        lines = self.metrics_path.read_text().splitlines(keepends=True)[:n]
        self.metrics_path.write_text("".join(lines))

    def config_record(self, hint: str = "") -> dict | None:
        """config.yaml as stored (the config, its hash and the inputs' fingerprints); None when absent.

        InputError (ending in `hint`) when it is not a YAML mapping."""
        import yaml

        tail = f"; {hint}" if hint else ""
        if not self.config_path.exists():
            return None
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise InputError(f"unreadable run record ({type(err).__name__}){tail}", file=self.config_path) from None
        if not isinstance(data, dict):
            raise InputError(f"unreadable run record (not a mapping){tail}", file=self.config_path)
        return data

    def config(self, device: str | None = None):
        """The run's FinetuneConfig, read from config.yaml (`device` replaces the one it ran on)."""
        from optbench.config import FinetuneConfig

        data = self.config_record()
        if data is None:
            raise InputError(f"not a finetune run folder (no {self.CONFIG})", file=self.path, field="run")
        data = {k: v for k, v in data.items() if k not in ("config_hash", "inputs")}
        if device is not None:
            data["device"] = device
        return FinetuneConfig.validated(data, str(self.config_path))


@dataclass(frozen=True)
class StudyTrial:
    """One trial of a study: its row in study.json and its run folder."""

    key: str
    row: dict
    run: RunDir


@dataclass(frozen=True)
class PropertyFile:
    """One stored property result: analyses/properties/<dataset>/<key>/<structure>/<property>.json."""

    dataset: str
    key: str  # a trial's config hash, or pretrained-<backbone>
    structure: str
    name: str  # the property; "<property>.failed" for a failed attempt kept for the report
    path: Path

    @property
    def pretrained(self) -> bool:
        return self.key.startswith(PRETRAINED)


class StudyDir(_Folder):
    """A study's folder (`optbench run --out STUDY_DIR`)."""

    INDEX, CONFIG, TRIALS, ANALYSES, LR_RANGE, CACHE = "study.json", "study.yaml", "trials", "analyses", "lr_range", "cache"
    RESULTS_CSV, REPORT_MD, REPORT_HTML, FIGURES = "results.csv", "report.md", "report.html", "figures"
    KEEP = (INDEX, TRIALS, LR_RANGE)  # a folder holding one of these is never removed after an error

    # ---- the index and the trials
    @property
    def index_path(self) -> Path:
        return self.path / self.INDEX

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def cache_dir(self) -> Path:
        return self.path / self.CACHE

    def is_study(self) -> bool:
        return self.index_path.is_file()

    def index(self) -> dict:
        """study.json: the study's hash, inputs, trials (one row each), the selected LRs, the datasets."""
        return read_json(self.index_path)

    def trial(self, key: str) -> RunDir:
        """The run folder of one trial: trials/<config hash>."""
        return RunDir(self.path / self.TRIALS / key)

    def trials(self) -> list[StudyTrial]:
        """Every trial of study.json, in its order."""
        return [StudyTrial(row["trial"], row, self.trial(row["trial"])) for row in self.index()["trials"]]

    # ---- analyses
    @property
    def analyses_dir(self) -> Path:
        return self.path / self.ANALYSES

    def property_path(self, dataset: str, key: str, structure: str, prop: str) -> Path:
        return self.analyses_dir / "properties" / dataset / key / structure / f"{prop}.json"

    def property_files(self, dataset: str | None = None, key: str | None = None) -> Iterator[PropertyFile]:
        """Stored property results: all of them (in the file system's order), or one dataset's and
        key's (sorted)."""
        base = self.analyses_dir / "properties"
        if dataset is None or key is None:
            paths = base.glob("*/*/*/*.json")
        else:
            paths = sorted((base / dataset / key).glob("*/*.json"))
        for path in paths:
            ds, k, struct = path.relative_to(base).parts[:3]
            yield PropertyFile(ds, k, struct, path.stem, path)

    def curvature_path(self, key: str, checkpoint: str) -> Path:
        """The curvature analysis of one checkpoint of a trial (its figures beside it)."""
        return self.analyses_dir / "curvature" / key / checkpoint / CURVATURE_JSON

    def curvature_files(self, key: str) -> list[tuple[str, Path]]:
        """(checkpoint, curvature.json) of one trial, sorted by checkpoint."""
        return [(p.parent.name, p) for p in sorted((self.analyses_dir / "curvature" / key).glob(f"*/{CURVATURE_JSON}"))]

    def forgetting_path(self, key: str) -> Path:
        return self.analyses_dir / "forgetting" / f"{key}.json"

    @staticmethod
    def failed_path(path: Path) -> Path:
        """Where a failed analysis is kept for the report (retried on the next run): <name>.failed.json."""
        return path.with_suffix(".failed.json")

    def lr_range_path(self, dataset: str, backbone: str, optimizer: str) -> Path:
        return self.path / self.LR_RANGE / dataset / backbone.replace(":", "_") / f"{optimizer.replace(':', '_')}.json"

    @property
    def lr_grids_path(self) -> Path:
        return self.path / self.LR_RANGE / "grids.json"

    # ---- the report
    @property
    def results_csv(self) -> Path:
        return self.path / self.RESULTS_CSV

    @property
    def report_md(self) -> Path:
        return self.path / self.REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.path / self.REPORT_HTML

    @property
    def figures_dir(self) -> Path:
        return self.path / self.FIGURES


def checkpoint_key(key: str, checkpoint: str) -> str:
    """The analysis key of a trial's model at a checkpoint other than the delivered one: <key>@final."""
    return f"{key}@{checkpoint}"


def pretrained_key(backbone: str) -> str:
    """The analysis key of a pretrained model (its properties sit beside the trials')."""
    return f"{PRETRAINED}{backbone}"
