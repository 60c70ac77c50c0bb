"""The figure of the strategy axis: accuracy against forgetting, one point per optimizer x strategy."""

from __future__ import annotations

import math
from pathlib import Path

from optbench.report.aggregate import StudyData
from optbench.report.figures.common import colors_for, plt, save
from optbench.report.strategy_axis import panels, strategy_count

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def accuracy_forgetting(data: StudyData, out: Path) -> Path | None:
    """Per panel (dataset): force MAE on the first ID test set (x) against the probe-set force drift
    (y), seed means with 95% intervals both ways; colour the optimizer, marker the strategy; the
    Pareto front joined by a line, its points ringed. None unless the study has >= 2 strategies."""
    by_panel = {t: [p for p in pts if p.placed] for t, pts in panels(data).items()}
    by_panel = {t: pts for t, pts in by_panel.items() if pts}
    if strategy_count(data) < 2 or not by_panel:
        return None
    points = [p for pts in by_panel.values() for p in pts]
    colors = colors_for(dict.fromkeys(p.optimizer for p in points))
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(dict.fromkeys(p.strategy for p in points))}
    ncol = min(3, len(by_panel))
    nrow = math.ceil(len(by_panel) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.8 * nrow), squeeze=False)
    for ax, (title, pts) in zip(axes.flat, by_panel.items()):
        for p in pts:
            ax.errorbar(p.accuracy["mean"], p.forgetting["mean"], xerr=p.accuracy["ci"] or 0,
                        yerr=p.forgetting["ci"] or 0, fmt=markers[p.strategy], color=colors[p.optimizer], ms=7,
                        capsize=2, lw=0.8, zorder=3)
        front = sorted((p for p in pts if p.pareto), key=lambda p: p.accuracy["mean"])
        ax.plot([p.accuracy["mean"] for p in front], [p.forgetting["mean"] for p in front], "--", color="0.3",
                lw=1, zorder=2)
        ax.scatter([p.accuracy["mean"] for p in front], [p.forgetting["mean"] for p in front], s=230,
                   facecolors="none", edgecolors="k", lw=1.2, zorder=4)
        ax.set_xlabel(f"{pts[0].test_set} force MAE (meV/Å)", fontsize=8)
        ax.set_ylabel("probe-set force drift, RMS (meV/Å)", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(by_panel):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=o) for o, c in colors.items()]
    handles += [plt.Line2D([], [], ls="", marker=m, color="0.4", label=s) for s, m in markers.items()]
    handles.append(plt.Line2D([], [], ls="--", marker="o", ms=11, mfc="none", color="k", label="Pareto front"))
    axes.flat[0].legend(handles=handles, fontsize=6.5, loc="best")
    return save(fig, out / "accuracy_forgetting.png")
