"""Run a study: trials on an executor, LR chosen on validation, then the analyses and the report."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from optbench.errors import InputError, StudyFailed
from optbench.identity import check_same_inputs, fingerprint
from optbench.io import read_json, write_json, write_text, write_yaml
from optbench.lock import claimed_folder, remove_stale_temporaries
from optbench.study.config import StudyConfig
from optbench.study.executors import execute
from optbench.study.trials import ResolvedDataset, Trial, expand, resolve_dataset
from optbench.study.validate import dataset_files, validate_study

STUDY_JSON = "study.json"
ANALYSES = "analyses"
LR_RANGE = "lr_range"


def valid_loss(result: dict | None) -> float:
    """Selection score of a trial: the weighted validation loss its run recorded (inf when diverged/crashed
    or not a finite number)."""
    if not result or result.get("status") != "completed" or result.get("valid_loss") is None:
        return math.inf
    loss = float(result["valid_loss"])
    return loss if math.isfinite(loss) else math.inf


def select_lrs(trials: list[Trial], results: list[dict]) -> dict[tuple, float]:
    """Per (dataset, backbone, optimizer): the LR with the best mean validation loss over seeds.

    A seed that did not complete scores inf, so an LR is chosen only if all its seeds completed,
    unless none did anywhere in the grid; ties go to the smaller LR."""
    scores: dict[tuple, dict[float, list[float]]] = {}
    for t, r in zip(trials, results, strict=True):
        scores.setdefault((t.dataset, t.backbone, t.optimizer), {}).setdefault(t.lr, []).append(valid_loss(r))
    chosen = {}
    for key, by_lr in scores.items():
        means = {lr: float(np.mean(v)) for lr, v in by_lr.items()}
        chosen[key] = min(means, key=lambda lr: (means[lr], lr))
    return chosen


def _frames_outside(datasets: dict[str, ResolvedDataset], inside: str, per_set: int = 8) -> dict[str, list]:
    """Structures from the other datasets of the study (first `per_set` of each test file), by dataset."""
    from ase.io import read

    out = {}
    for name, ds in datasets.items():
        if name != inside:
            out[name] = [a for path in ds.tests.values() for a in read(path, index=f":{per_set}")]
    return {k: v for k, v in out.items() if v}


def _forgetting(probes: dict, backbone: str, datasets: dict[str, ResolvedDataset], inside: str, run_dir: str) -> dict:
    """Drift of one run on the built-in probe set and the other datasets (pretrained predictions cached)."""
    from optbench.forgetting import ForgettingProbe

    if (backbone, inside) not in probes:
        probes[backbone, inside] = ForgettingProbe(backbone, _frames_outside(datasets, inside))
    return {"pretrained": backbone, **probes[backbone, inside].measure(run_dir)}


def _cached(path: Path, compute, *args):
    if path.exists():
        return read_json(path)
    result = compute(*args)
    if result.get("status") == "failed":  # recorded for the report, retried on the next run
        write_json(path.with_suffix(".failed.json"), result)
    else:
        write_json(path, result)
    return result


def run_analyses(study: StudyConfig, out: Path, datasets: dict[str, ResolvedDataset], selected: list[Trial]) -> None:
    """Properties, curvature and forgetting of the selected trials (and the pretrained models)."""
    an = out / ANALYSES
    jobs = []
    for t in selected:
        ds = datasets[t.dataset]
        run_dir = Path(t.config.out)
        if not (run_dir / "results.json").exists() or read_json(run_dir / "results.json")["status"] != "completed":
            continue
        if study.properties and ds.folder is not None:
            for struct, props in _property_jobs(ds):
                for prop in props:
                    jobs.append(("property", t.key, str(run_dir), ds, struct, prop))
                    jobs.append(("property", f"pretrained-{t.backbone}", t.backbone, ds, struct, prop))
        if study.curvature is not None and t.seed == study.seeds[0]:
            for ck in study.curvature.checkpoints:
                if ck == "refined" and not study.refine:
                    continue
                jobs.append(("curvature", t.key, str(run_dir), ds, ck, None))
        if study.forgetting:
            jobs.append(("forgetting", t.key, str(run_dir), ds, t.backbone, None))
    seen, probes = set(), {}
    for kind, key, model, ds, a, b in tqdm(jobs, desc="analyses", unit="job", disable=None):
        ident = (kind, key, ds.name, a, b)
        if ident in seen:
            continue
        seen.add(ident)
        if kind == "property":
            target = an / "properties" / ds.name / key / a / f"{b}.json"
            _cached(target, _property, b, model, ds, a, target.parent)
        elif kind == "curvature":
            target = an / "curvature" / key / a / "curvature.json"
            _cached(target, _curvature, model, a, ds, study, target.parent)
        else:
            target = an / "forgetting" / f"{key}.json"
            _cached(target, _forgetting, probes, a, datasets, ds.name, model)


def _property_jobs(ds: ResolvedDataset) -> list[tuple[str, list[str]]]:
    refs = ds.manifest.get("reference_properties", {})
    out = []
    for struct in ds.manifest.get("structures", {}):
        have = list(refs.get(struct, {}))
        props = have if ds.properties == "auto" else [p for p in ds.properties if p in have]
        if props:
            out.append((struct, props))
    return out


def _property(name: str, model: str, ds: ResolvedDataset, struct: str, out: Path) -> dict:
    from optbench.properties import run_property

    path = ds.folder / ds.manifest["structures"][struct]
    try:
        return run_property(name, model=model, structure=str(path), dataset=str(ds.folder), out=str(out),
                            settings=ds.property_settings.get(name))
    except Exception as err:  # a failed property is recorded with its traceback, the study goes on
        return _failure(err, out / f"{name}.error.txt")


def _failure(err: Exception, error_file: Path) -> dict:
    """The record of a failed analysis; its full traceback goes to `error_file`, which the record names
    (relative to the folder of the record)."""
    import traceback

    write_text(error_file, "".join(traceback.format_exception(err)))
    return {"status": "failed", "error": f"{type(err).__name__}: {err}", "error_file": error_file.name}


def _curvature(run_dir: str, checkpoint: str, ds: ResolvedDataset, study: StudyConfig, out: Path) -> dict:
    from optbench.curvature import run_curvature

    try:
        return run_curvature(run_dir=run_dir, checkpoint=checkpoint, data=str(ds.train),
                             n_structures=study.curvature.n_structures, k=study.curvature.k,
                             gauss_newton=False, seed=0, out=str(out), n_iter=study.curvature.n_iter,
                             n_probes=study.curvature.n_probes, n_slq=study.curvature.n_slq, progress=False)
    except Exception as err:  # recorded with its traceback, the study goes on
        return _failure(err, out / "error.txt")


def _provenance(study: StudyConfig, trials) -> dict:
    from optbench.provenance import backbone_of, provenance

    device = trials[0].config.device if trials else "cpu"
    return provenance(device, [backbone_of(b) for b in study.backbones], study.threads_per_trial)


def auto_grids(study: StudyConfig, out: Path, datasets: dict[str, ResolvedDataset]) -> dict[tuple, list[float]]:
    """`lr_grid: auto`: one LR range test per (dataset, backbone, optimizer), cached under
    out/lr_range/, and the grid it places; the summary goes to out/lr_range/grids.json."""
    from optbench.study.lr_range import lr_grid, lr_range_test

    grids, summary = {}, {}
    for ds in datasets.values():
        for bb in study.backbones:
            for opt, spec in study.optimizers.items():
                path = out / LR_RANGE / ds.name / bb.replace(":", "_") / f"{opt.replace(':', '_')}.json"
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
    write_json(out / LR_RANGE / "grids.json", summary)
    return grids


def run_study(study: StudyConfig, out: str | Path, executor: str = "local", workers: int = 1,
              address: str | None = None, report: bool = True) -> dict:
    """Run (or resume) every trial and analysis of `study` under `out`; returns the study index."""
    out = Path(out)
    datasets = {d.name: resolve_dataset(d) for d in study.datasets}
    validate_study(study, datasets)
    inputs = fingerprint({k: v for d in datasets.values() for k, v in dataset_files(d).items()})
    from optbench.featcache import cache_in

    with claimed_folder(out, keep=(STUDY_JSON, "trials", LR_RANGE), field="out"), cache_in(out / "cache"):
        remove_stale_temporaries(out)
        index = _run_locked(study, out, datasets, inputs, executor, workers, address, report)
    statuses = [r.get("status") for r in index["results"]]
    if "completed" not in statuses:
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        raise StudyFailed(f"no trial of {len(statuses)} completed ({counts}); see {out / 'report.md'}"
                          + ("; tracebacks in trials/*/error.txt" if "crashed" in statuses else ""))
    index.pop("results")
    return index


def _run_locked(study, out, datasets, inputs, executor, workers, address, report) -> dict:
    old = out / STUDY_JSON
    if old.exists():
        before = read_json(old)
        if before.get("study_hash") not in (None, study.hash()):
            raise InputError("this folder holds a different study; choose another --out", file=out, field="out")
        check_same_inputs(before.get("inputs"), inputs, out, "choose another --out for the new data")
    grids = auto_grids(study, out, datasets) if study.lr_grid == "auto" else None
    trials = expand(study, out, datasets, grids)
    write_yaml(out / "study.yaml", study.model_dump(mode="json"))
    index = {"study_hash": study.hash(), "name": study.name, "reference_optimizer": study.reference_optimizer,
             "inputs": inputs,
             "provenance": _provenance(study, trials),
             "trials": [t.row() for t in trials], "selected_lr": {},
             "lr_grids": {"|".join(k): v for k, v in grids.items()} if grids else None, "datasets": {
                 n: {"regime": d.regime, "train": str(d.train), "tests": {k: str(v) for k, v in d.tests.items()},
                     "tags": d.tags, "folder": str(d.folder) if d.folder else None} for n, d in datasets.items()}}
    write_json(old, index)
    results = execute([t.config for t in trials], executor, workers, study.threads_per_trial, address,
                      gpus_per_trial=study.gpus_per_trial)
    chosen = select_lrs(trials, results)
    index["selected_lr"] = {"|".join(k): v for k, v in chosen.items()}
    selected = [t for t in trials if chosen[(t.dataset, t.backbone, t.optimizer)] == t.lr]
    for row, t in zip(index["trials"], trials):
        row["selected"] = t in selected
    write_json(old, index)
    run_analyses(study, out, datasets, selected)
    if report:
        from optbench.report import build_report

        build_report(out)
    return {**index, "results": results}
