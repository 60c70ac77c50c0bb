"""Run a study: trials on an executor, LR chosen on validation, then the analyses and the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optbench.errors import InputError, StudyFailed
from optbench.identity import check_same_inputs, fingerprint
from optbench.io import read_json, write_json, write_yaml
from optbench.layout import RunDir, StudyDir
from optbench.lock import claimed_folder, remove_stale_temporaries
from optbench.study.analyses import run_analyses
from optbench.study.config import StudyConfig
from optbench.study.executors import execute
from optbench.study.session import Session
from optbench.study.trials import ResolvedDataset, Trial, expand, resolve_dataset
from optbench.study.validate import dataset_files, validate_study

STUDY_JSON, ANALYSES, LR_RANGE = StudyDir.INDEX, StudyDir.ANALYSES, StudyDir.LR_RANGE  # their old import path

__all__ = ["auto_grids", "run_analyses", "run_study", "select_lrs", "valid_loss"]


def valid_loss(result: dict | None) -> float:
    """Selection score of a trial: the weighted validation loss its run recorded (inf when diverged/crashed
    or not a finite number)."""
    if not result or result.get("status") != "completed" or result.get("valid_loss") is None:
        return math.inf
    loss = float(result["valid_loss"])
    return loss if math.isfinite(loss) else math.inf


def select_lrs(trials: list[Trial], results: list[dict]) -> dict[tuple, float]:
    """Per (dataset, backbone, optimizer[, strategy]) (`Trial.arm`): the LR with the best mean validation loss over seeds.

    A seed that did not complete scores inf, so an LR is chosen only if all its seeds completed,
    unless none did anywhere in the grid; ties go to the smaller LR."""
    scores: dict[tuple, dict[float, list[float]]] = {}
    for t, r in zip(trials, results, strict=True):
        scores.setdefault(t.arm, {}).setdefault(t.lr, []).append(valid_loss(r))
    chosen = {}
    for key, by_lr in scores.items():
        means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
        chosen[key] = min(means, key=lambda lr: (means[lr], lr))
    return chosen


def _provenance(study: StudyConfig, trials) -> dict:
    from optbench.provenance import backbone_of, provenance

    device = trials[0].config.device if trials else "cpu"
    return provenance(device, [backbone_of(b) for b in study.backbones], study.threads_per_trial)


def auto_grids(study: StudyConfig, out: Path, datasets: dict[str, ResolvedDataset]) -> dict[tuple, list[float]]:
    """`lr_grid: auto`: one LR range test per (dataset, backbone, optimizer), cached under
    out/lr_range/, and the grid it places; the summary goes to out/lr_range/grids.json."""
    from optbench.study.lr_range import lr_grid, lr_range_test

    grids, summary = {}, {}
    folder = StudyDir(out)
    for ds in datasets.values():
        for bb in study.backbones:
            for opt, spec in study.optimizers.items():
                path = folder.lr_range_path(ds.name, bb, opt)
                if path.exists():
                    result = read_json(path)
                else:
                    result = lr_range_test(bb, ds.train, opt, steps=study.lr_range_steps, batch_size=study.batch_size,
                                           seed=study.seeds[0], loss_weights=study.loss_weights.model_dump(),
                                           optimizer_kwargs=spec.kwargs, keys=ds.keys)
                    write_json(path, result)
                try:
                    grids[ds.name, bb, opt] = lr_grid(result, study.lr_grid_size)
                except ValueError as err:
                    from optbench.errors import InputError

                    raise InputError(f"LR range test failed: {err}", file=path, field=f"optimizers.{opt}") from None
                summary["|".join((ds.name, bb, opt))] = {
                    "grid": grids[ds.name, bb, opt], **{k: result[k] for k in ("lr_steepest", "lr_min_loss", "lr_diverged")}}
    write_json(folder.lr_grids_path, summary)
    return grids


def run_study(study: StudyConfig, out: str | Path, executor: str = "local", workers: int = 1,
              address: str | None = None, report: bool = True) -> dict:
    """Run (or resume) every trial and analysis of `study` under `out`; returns the study index."""
    out = Path(out)
    if executor == "process" and workers > 1:
        from optbench.study.executors import start_workers

        start_workers()  # the workers' imports, once, beside the checks below
    datasets = {d.name: resolve_dataset(d) for d in study.datasets}
    validate_study(study, datasets)
    inputs = fingerprint({k: v for d in datasets.values() for k, v in dataset_files(d).items()})
    from optbench.featcache import cache_in

    folder = StudyDir(out)
    with claimed_folder(out, keep=StudyDir.KEEP, field="out"), cache_in(folder.cache_dir):
        remove_stale_temporaries(out)
        index = _run_locked(study, out, datasets, inputs, executor, workers, address, report)
    statuses = [r.get("status") for r in index["results"]]
    if "completed" not in statuses:
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        raise StudyFailed(f"no trial of {len(statuses)} completed ({counts}); see {folder.report_md}"
                          + (f"; tracebacks in {StudyDir.TRIALS}/*/{RunDir.ERROR}" if "crashed" in statuses else ""))
    index.pop("results")
    return index


def _run_locked(study, out, datasets, inputs, executor, workers, address, report) -> dict:
    old = StudyDir(out).index_path
    before = read_json(old) if old.exists() else {}
    if before:
        if before.get("study_hash") not in (None, study.hash()):
            raise InputError("this folder holds a different study; choose another --out", file=out, field="out")
        check_same_inputs(before.get("inputs"), inputs, out, "choose another --out for the new data")
    grids = auto_grids(study, out, datasets) if study.lr_grid == "auto" else None
    trials = expand(study, out, datasets, grids)
    write_yaml(StudyDir(out).config_path, study.model_dump(mode="json"))
    prov = _provenance(study, trials)
    session = Session(prov.get("command"), executor, workers)
    index = {"study_hash": study.hash(), "name": study.name, "reference_optimizer": study.reference_optimizer,
             "inputs": inputs,
             "provenance": prov, "sessions": before.get("sessions", []),
             "trials": [t.row() for t in trials], "selected_lr": {},
             "lr_grids": {"|".join(k): v for k, v in grids.items()} if grids else None, "datasets": {
                 n: {"regime": d.regime, "train": str(d.train), "tests": {k: str(v) for k, v in d.tests.items()},
                     "tags": d.tags, "folder": str(d.folder) if d.folder else None} for n, d in datasets.items()}}
    write_json(old, index)
    results = execute([t.config for t in trials], executor, workers, study.threads_per_trial, address,
                      gpus_per_trial=study.gpus_per_trial)
    session.lap("trials")
    chosen = select_lrs(trials, results)
    index["selected_lr"] = {"|".join(k): v for k, v in chosen.items()}
    selected = [t for t in trials if chosen[t.arm] == t.lr]
    for row, t in zip(index["trials"], trials):
        row["selected"] = t in selected
    write_json(old, index)
    run_analyses(study, out, datasets, selected, workers=workers if executor == "process" else 1)
    session.lap("analyses")
    if report:
        from optbench.report import build_report

        build_report(out)
        session.lap("report")
    index["sessions"] = [*index["sessions"], session.close()]
    write_json(old, index)
    return {**index, "results": results}
