"""`optbench run --dry-run`: check a study as the runner does, then print its trials, the analyses it will
run and an estimate of its wall time from measured costs (optbench.study.cost). Runs and writes nothing."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from itertools import product

from optbench.config import FinetuneConfig
from optbench.study.config import StudyConfig
from optbench.study.cost import (
    MACHINE,
    REPORT_S,
    REPORT_S_PER_TRIAL,
    WORKER_START_S,
    curvature_seconds,
    forgetting_seconds,
    regime_cost,
    trial_seconds,
)
from optbench.study.trials import ResolvedDataset, resolve_dataset
from optbench.study.validate import validate_study


@dataclass
class Plan:
    """A study's work: one row per dataset x backbone x optimizer, and the seconds of every job."""

    rows: list[dict] = field(default_factory=list)
    trials: list[float] = field(default_factory=list)  # seconds of each trial
    lr_range: list[float] = field(default_factory=list)  # seconds of each LR range test (lr_grid: auto)
    analyses: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds of each job
    per_worker: list[float] = field(default_factory=list)  # paid once per analysis worker (pretrained predictions)
    notes: list[str] = field(default_factory=list)


def makespan(jobs: list[float], workers: int) -> float:
    """Wall time of `jobs` on `workers` workers, longest first to the first free worker (LPT)."""
    free = [0.0] * max(1, workers)
    for job in sorted(jobs, reverse=True):
        heapq.heapreplace(free, free[0] + job)
    return max(free)


def _n_train(study: StudyConfig, ds: ResolvedDataset) -> int:
    split = (ds.manifest.get("splits") or {}).get(ds.manifest.get("train_split") or "train") or {}
    if "count" in split:
        n = int(split["count"])
    else:
        from ase.io import iread

        n = sum(1 for _ in iread(str(ds.train), index=":"))
    return n if ds.valid is not None else max(1, round(n * (1 - study.valid_fraction)))


def _md_steps(ds: ResolvedDataset, struct: str, prop: str) -> int:
    settings = {**(((ds.manifest.get("reference_properties") or {}).get(struct) or {}).get(prop) or {}).get("settings", {}),
                **ds.property_settings.get(prop, {})}
    return sum(int(settings.get(k) or 0) for k in ("equilibration_steps", "nvt_steps", "nve_steps", "npt_steps"))


def _property_costs(study: StudyConfig, ds: ResolvedDataset, cost) -> list[float]:
    """Seconds of each property job of one model (the structures x properties of the manifest)."""
    from optbench.study.analyses import _property_jobs

    if not study.properties or ds.folder is None:
        return []
    out = []
    for struct, props in _property_jobs(ds):
        for prop in props:
            per = cost.properties.get(prop, 0.0)
            out.append(per * _md_steps(ds, struct, prop) if prop in ("md", "interface") else per)
    return out


def make_plan(study: StudyConfig, datasets: dict[str, ResolvedDataset]) -> Plan:
    plan = Plan()
    steps = study.max_steps or 10**9
    n_seeds, cv = len(study.seeds), study.curvature
    models = 1 if study.properties is True else len(study.properties or [])
    for ds in datasets.values():
        default = FinetuneConfig.model_fields["refine_structures"].default
        n_refine = min(int(study.finetune.get("refine_structures", default)), _n_train(study, ds))
        for bb in study.backbones:
            cost, note = regime_cost(bb, ds.regime)
            if note and note not in plan.notes:
                plan.notes.append(note)
            one = trial_seconds(cost, steps=steps, batch_size=study.batch_size, eval_every=study.eval_every,
                                max_time_s=study.max_time_s, refine_steps=study.refine_steps if study.refine else 0,
                                refine_structures=n_refine)
            props = _property_costs(study, ds, cost)
            others = [(regime_cost(bb, o.regime)[0], len(o.tests)) for o in datasets.values() if o.name != ds.name]
            forget = forgetting_seconds(cost, others)
            plan.analyses.setdefault("properties (pretrained model)", []).extend(props)
            for (opt, grid), strategy in product(study.optimizers.items(), study.strategies):
                n_lr = study.lr_grid_size if study.lr_grid == "auto" else len(grid.lrs)
                if study.lr_grid == "auto" and strategy == study.strategies[0]:  # one range test for every strategy
                    plan.lr_range.append(cost.trial_s + study.lr_range_steps * cost.step_s * study.batch_size / 4)
                plan.trials += [one] * (n_lr * n_seeds)
                label = opt if study.strategies == ["full"] else f"{opt} [{strategy}]"
                plan.rows.append({"dataset": ds.name, "backbone": bb, "optimizer": label, "lrs": grid.lrs or f"auto ({n_lr})",
                                  "seeds": n_seeds, "trials": n_lr * n_seeds, "s_per_trial": one})
                plan.analyses.setdefault("properties", []).extend(props * (models * n_seeds))
                if cv is not None:
                    for ck in cv.checkpoints:
                        if ck != "refined" or study.refine:
                            plan.analyses.setdefault("curvature", []).append(curvature_seconds(
                                cost, ck, n_structures=cv.n_structures, n_iter=cv.n_iter or 2 * cv.k + 10,
                                n_probes=cv.k if cv.n_probes is None else cv.n_probes, n_slq=cv.n_slq))
                if study.forgetting:
                    plan.analyses.setdefault("forgetting", []).extend([forget] * n_seeds)
            if study.forgetting:  # the pretrained predictions a worker computes once per dataset
                plan.per_worker.append(forget)
    return plan


def _clock(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def estimate(plan: Plan, executor: str, workers: int) -> dict[str, float]:
    """Wall seconds of each phase as the runner orders them (LR range tests, trials, analyses, report):
    trials on `workers` (one with the local executor), analyses on `workers` with the process executor
    (the driver's one process otherwise); `cpu_s`: the work in seconds of one core."""
    trial_workers = 1 if executor == "local" else workers
    analysis_workers = workers if executor == "process" else 1
    jobs = [j for js in plan.analyses.values() for j in js] + plan.per_worker * analysis_workers
    out = {"trial_workers": trial_workers, "analysis_workers": analysis_workers, "lr_range_s": sum(plan.lr_range),
           "trials_s": makespan(plan.trials, trial_workers) + WORKER_START_S,
           "analyses_s": makespan(jobs, analysis_workers) + (WORKER_START_S if analysis_workers > 1 else 0),
           "report_s": REPORT_S + REPORT_S_PER_TRIAL * len(plan.trials), "cpu_s": sum(plan.lr_range) + sum(plan.trials) + sum(jobs)}
    out["total_s"] = out["lr_range_s"] + out["trials_s"] + out["analyses_s"] + out["report_s"]
    return out


def format_plan(study: StudyConfig, plan: Plan, executor: str, workers: int) -> str:
    w = max([13, *(len(r["optimizer"]) for r in plan.rows)])  # "optimizer [strategy]" where strategies are crossed
    head = f"{'dataset':12s} {'backbone':10s} {'optimizer':{w}s} {'learning rates':28s} {'seeds':>5s} {'trials':>6s} {'s/trial':>8s}"
    lines = [f"study '{study.name}': checked (optimizers, data files, backbones, property settings); "
             f"{len(plan.trials)} trials", "", head, "-" * len(head)]
    for r in plan.rows:
        lrs = ", ".join(f"{x:g}" for x in r["lrs"]) if isinstance(r["lrs"], list) else r["lrs"]
        lines.append(f"{r['dataset']:12s} {r['backbone']:10s} {r['optimizer']:{w}s} {lrs:28s} {r['seeds']:5d} "
                     f"{r['trials']:6d} {r['s_per_trial']:8.0f}")
    cks = study.curvature.checkpoints if study.curvature is not None else []
    within = " (its final spectrum within the refined analysis)" if "refined" in cks and "final" not in cks else ""
    curv = f"; curvature on seed {study.seeds[0]} only, at {', '.join(cks)}{within}" if cks else ""
    axes = "dataset x backbone x optimizer" + ("" if study.strategies == ["full"] else " x strategy")
    lines += ["", f"analyses of the selected LR of each {axes}, every seed{curv}:"]
    lines += [f"  {kind:32s} {len(jobs):5d} jobs {sum(jobs):9.0f} s" for kind, jobs in plan.analyses.items() if jobs]
    t = estimate(plan, executor, workers)
    lines += ["", f"estimated wall time, {executor} executor with {t['trial_workers']} worker(s) for trials and "
                  f"{t['analysis_workers']} for analyses: "
              + (f"LR range tests {_clock(t['lr_range_s'])} + " if t["lr_range_s"] else "")
              + f"trials {_clock(t['trials_s'])} + analyses {_clock(t['analyses_s'])} + report {_clock(t['report_s'])} "
                f"= {_clock(t['total_s'])}",
              f"(work: {_clock(t['cpu_s'])} of one core; costs measured on a {MACHINE}; each worker is assumed "
              "to have a core of its own: a loaded machine takes longer)"]
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join([*lines, "dry run: nothing was run or written"])


def dry_run(study: StudyConfig, executor: str = "local", workers: int = 1) -> str:
    """Validate `study` (InputError on the first problem, as `run_study` does before any folder exists)
    and return the printed plan: trial table, analyses, estimated wall time."""
    from optbench.featcache import cache_off

    with cache_off():  # the checks read every file; a dry run leaves no cache entry behind
        datasets = {d.name: resolve_dataset(d) for d in study.datasets}
        validate_study(study, datasets)
    return format_plan(study, make_plan(study, datasets), executor, workers)
