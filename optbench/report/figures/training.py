"""Figures of training: the summary ranking, learning curves, error bars, performance profile, refinement."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optbench.report.aggregate import StudyData
from optbench.report.figures.common import colors_for, plt, save


def learning_curves(data: StudyData, out: Path) -> list[Path]:
    colors = colors_for(data.optimizers)
    paths = []
    for ds in data.datasets:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        for r in data.selected(ds):
            arm = data.arm(r)
            if r["seed"] != min(x["seed"] for x in data.selected(ds, arm)):
                continue
            curve = data.curve(r["trial"])
            steps = [x for x in curve if "loss" in x]
            valid = [x for x in curve if x.get("valid_forces_mae") is not None]
            if steps:
                ax1.plot([x["step"] for x in steps], [x["loss"] for x in steps], color=colors[arm],
                         label=f"{arm} ({r['lr']:g})", lw=1)
            if valid:
                ax2.plot([x["step"] for x in valid], [x["valid_forces_mae"] for x in valid], "o-",
                         color=colors[arm], ms=3, lw=1)
        ax1.set(yscale="log", xlabel="step", ylabel="training loss", title=f"{ds}: training loss")
        ax2.set(xlabel="step", ylabel="validation force MAE (meV/Å)", title=f"{ds}: validation")
        ax1.legend(fontsize=7)
        paths.append(save(fig, out / f"learning_curves_{ds}.png"))
    return paths


def error_bars(data: StudyData, out: Path) -> Path:
    summary = data.summary()
    datasets = data.datasets
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        rows = [s for s in summary if s["dataset"] == ds]
        keys = [k for k in rows[0] if k.endswith(":forces_mae")] if rows else []
        width = 0.8 / max(len(keys), 1)
        x = np.arange(len(rows))
        for j, key in enumerate(keys):
            means = [r[key]["mean"] if r[key]["mean"] is not None else np.nan for r in rows]
            cis = [r[key]["ci"] or 0 for r in rows]
            ax.bar(x + j * width, means, width, yerr=cis, capsize=2, label=key.rsplit(":", 1)[0])
        ax.set_xticks(x + width * (len(keys) - 1) / 2, [r["optimizer"] for r in rows], rotation=45, ha="right")
        ax.set(ylabel="force MAE (meV/Å)", title=ds)
        ax.legend(fontsize=7)
    return save(fig, out / "force_errors.png")


def performance_profile(data: StudyData, out: Path) -> Path:
    prof = data.performance_profile()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    colors = colors_for(data.optimizers)
    for opt, curve in prof["curves"].items():
        ax.step(prof["tau"], curve, where="post", label=opt, color=colors[opt])
    ax.set(xlabel="τ (error / best error)", ylabel="share of problems", ylim=(0, 1.05),
           title=f"performance profile ({prof['n_problems']} problems)")
    ax.legend(fontsize=7)
    return save(fig, out / "performance_profile.png")


def refinement(data: StudyData, out: Path) -> Path | None:
    rows = [g for ds in data.datasets for g in data.refinement_gain(ds)]
    if not rows:
        return None
    labels = [f"{g['optimizer']}\n{g['set']}" for g in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(rows)), 3.6))
    ax.bar(x - 0.2, [g["final"] for g in rows], 0.4, label="first-order")
    ax.bar(x + 0.2, [g["refined"] for g in rows], 0.4, label="+ L-BFGS")
    ax.set_xticks(x, labels, rotation=90, fontsize=6)
    ax.set(ylabel="force MAE (meV/Å)", title="L-BFGS refinement: before / after")
    ax.legend(fontsize=7)
    return save(fig, out / "refinement.png")



def summary(data: StudyData, out: Path) -> Path | None:
    """Which optimizer, where: per dataset, the optimizers ranked by the first ID test set's force
    MAE at their selected LR (mean and 95% CI over seeds); diverged and failed ones marked."""
    rows = data.summary()
    panels = []
    for ds in data.datasets:
        ids = [n for n, t in data.test_sets(ds).items() if t == "ID"] or list(data.test_sets(ds))
        if not ids:
            continue
        key = f"{data.test_sets(ds)[ids[0]]}:{ids[0]}:forces_mae"
        entries = [r for r in rows if r["dataset"] == ds]
        ranked = sorted(entries, key=lambda r: (r[key]["mean"] is None, r[key]["mean"] or 0.0))
        panels.append((ds, ids[0], key, ranked))
    if not panels:
        return None
    n_opt = max(len(p[3]) for p in panels)
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, (0.3 * n_opt + 1.1) * nrow), squeeze=False)
    colors = colors_for(data.optimizers)
    for ax, (ds, test, key, ranked) in zip(axes.flat, panels):
        y = np.arange(len(ranked))[::-1]
        for yi, r in zip(y, ranked):
            stat = r[key]
            if stat["mean"] is None:
                ax.text(0, yi, "  no completed trial", va="center", fontsize=7, color="0.4")
                continue
            hatch = "///" if r["diverged"] else None
            ax.barh(yi, stat["mean"], color=colors[r["optimizer"]], hatch=hatch, edgecolor="k", lw=0.4,
                    xerr=stat["ci"] or 0, capsize=2)
            note = f" {stat['mean']:.0f}" + (f" ± {stat['ci']:.0f}" if stat["ci"] is not None else "")
            if r["diverged"]:
                note += f"  ({r['diverged']} diverged)"
            ax.text(stat["mean"] + (stat["ci"] or 0), yi, note, va="center", fontsize=6.5)
        ax.set_yticks(y, [f"{r['optimizer']} ({r['lr']:g})" for r in ranked], fontsize=7)
        ax.set_xlabel(f"{test} force MAE (meV/Å)", fontsize=7)
        ax.set_title(ds, fontsize=9)
        ax.tick_params(axis="x", labelsize=6)
        ax.margins(x=0.35)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    return save(fig, out / "summary.png")
