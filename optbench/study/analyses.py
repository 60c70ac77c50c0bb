"""The analyses of a study's selected trials: properties, curvature and forgetting, one job each.

Each job's result is cached in the study folder (`optbench.layout.StudyDir`); a failed one is kept
beside it as <name>.failed.json for the report and retried on the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from optbench.forgetting import Forgetting
from optbench.io import read_json, write_json, write_text
from optbench.layout import RunDir, StudyDir, checkpoint_key, pretrained_key
from optbench.study.config import StudyConfig
from optbench.study.trials import ResolvedDataset, Trial


@dataclass(frozen=True, eq=False)
class AnalysisJob:
    """One analysis of one model: a property of a structure, the curvature at a checkpoint, or forgetting."""

    kind: Literal["property", "curvature", "forgetting"]
    key: str  # the trial's config hash, or pretrained-<backbone>
    model: str  # the run folder or backbone spec that the analysis loads
    dataset: ResolvedDataset
    structure: str | None = None  # property: the manifest's structure
    prop: str | None = None  # property: its name
    checkpoint: str | None = None  # curvature: start, mid, final or refined
    pretrained: str | None = None  # forgetting: the backbone the run started from

    def ident(self) -> tuple:
        """Jobs with one ident are one job (a pretrained model's property is asked for by every trial)."""
        return self.kind, self.key, self.dataset.name, self.structure or self.checkpoint or self.pretrained, self.prop


def analysis_jobs(study: StudyConfig, datasets: dict[str, ResolvedDataset], selected: list[Trial]) -> list[AnalysisJob]:
    """Every analysis of the selected trials that completed, in order, without repeats."""
    jobs = []
    for t in selected:
        ds = datasets[t.dataset]
        run = RunDir(t.config.out)
        if not run.completed():
            continue
        model = str(run.path)
        if study.properties and ds.folder is not None:
            models = property_models(study, t.key, run)
            for struct, props in _property_jobs(ds):
                for prop in props:
                    jobs += [AnalysisJob("property", key, path, ds, structure=struct, prop=prop) for key, path in models]
                    jobs.append(AnalysisJob("property", pretrained_key(t.backbone), t.backbone, ds, structure=struct, prop=prop))
        if study.curvature is not None and t.seed == study.seeds[0]:
            for ck in study.curvature.checkpoints:
                if ck == "refined" and not study.refine:
                    continue
                jobs.append(AnalysisJob("curvature", t.key, model, ds, checkpoint=ck))
        if study.forgetting:
            jobs.append(AnalysisJob("forgetting", t.key, model, ds, pretrained=t.backbone))
    unique = {}
    for job in jobs:
        unique.setdefault(job.ident(), job)
    return list(unique.values())


def property_models(study: StudyConfig, key: str, run: RunDir) -> list[tuple[str, str]]:
    """(analysis key, model) of each model of a trial whose properties the study computes: the delivered
    model (RUN_DIR: refined when the study refines) under the trial's key, and, with `properties: [final,
    ...]` in a refining study, the weights before the refinement (checkpoints/final.pt) under <key>@final."""
    if study.properties is True:
        return [(key, str(run.path))]
    delivered = "refined" if study.refine else "final"
    return [(key, str(run.path)) if ck == delivered else (checkpoint_key(key, ck), str(run.checkpoint(ck)))
            for ck in study.properties or []]


def run_analyses(study: StudyConfig, out: Path, datasets: dict[str, ResolvedDataset], selected: list[Trial],
                 workers: int = 1) -> None:
    """Properties, curvature and forgetting of the selected trials (and the pretrained models).

    With `workers` > 1 the jobs run in a pool of that many processes, each with this process's
    torch thread count; every job is seeded and writes its own file, so the results are the same.
    """
    folder = StudyDir(out)
    jobs = analysis_jobs(study, datasets, selected)
    test_files = {name: list(ds.tests.values()) for name, ds in datasets.items()}
    if workers > 1 and len(jobs) > 1:
        from concurrent.futures import as_completed

        import torch

        from optbench.study.executors import worker_pool

        with worker_pool(workers, _start_worker, (test_files, torch.get_num_threads())) as pool:
            futures = [pool.submit(_run_job, study, folder, job) for job in jobs]
            for fut in tqdm(as_completed(futures), total=len(futures), desc="analyses", unit="job", disable=None):
                fut.result()
        return
    forgetting = Forgetting(test_files)
    for job in tqdm(jobs, desc="analyses", unit="job", disable=None):
        _run_job(study, folder, job, forgetting)


_WORKER_FORGETTING: Forgetting | None = None  # a pool worker's forgetting measure (pretrained predictions kept)


def _start_worker(test_files: dict, threads: int) -> None:
    global _WORKER_FORGETTING
    import torch

    torch.set_num_threads(threads)
    _WORKER_FORGETTING = Forgetting(test_files)


def _run_job(study: StudyConfig, folder: StudyDir, job: AnalysisJob, forgetting: Forgetting | None = None) -> None:
    ds = job.dataset
    if job.kind == "property":
        target = folder.property_path(ds.name, job.key, job.structure, job.prop)
        _cached(target, _property, job.prop, job.model, ds, job.structure, target.parent)
    elif job.kind == "curvature":
        target = folder.curvature_path(job.key, job.checkpoint)
        _cached(target, _curvature, job.model, job.checkpoint, ds, study, target.parent)
    else:
        forgetting = forgetting or _WORKER_FORGETTING
        _cached(folder.forgetting_path(job.key), forgetting.measure, job.model, job.pretrained, ds.name)


def _cached(path: Path, compute, *args):
    if path.exists():
        return read_json(path)
    result = compute(*args)
    if result.get("status") == "failed":  # recorded for the report, retried on the next run
        write_json(StudyDir.failed_path(path), result)
    else:
        write_json(path, result)
    return result


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
                             n_probes=study.curvature.n_probes, n_slq=study.curvature.n_slq, progress=False,
                             beside=False)  # the study's workers fill the CPUs
    except Exception as err:  # recorded with its traceback, the study goes on
        return _failure(err, out / "error.txt")
