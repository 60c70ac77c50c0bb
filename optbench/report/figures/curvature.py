"""Figures of curvature: the extreme Hessian eigenvalues, raw and preconditioned."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optbench.io import read_json
from optbench.report.aggregate import StudyData
from optbench.report.figures.common import plt, save


def hessian_spectra(data: StudyData, out: Path) -> Path | None:
    """Top/bottom Hessian eigenvalues per optimizer, raw and preconditioned."""
    items = []
    for r in data.rows:
        for checkpoint, path in data.study.curvature_files(r["trial"]):
            c = read_json(path)
            if c.get("status") == "failed":
                continue
            raw = _eigs(c.get("hessian"))
            pre = _eigs(c.get("preconditioned"))
            if raw is not None:
                items.append((f"{data.arm(r)}\n{r['dataset']}:{checkpoint}", raw, pre))
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(items)), 3.8))
    for i, (_label, raw, pre) in enumerate(items):
        ax.scatter(np.full(len(raw), i - 0.12), np.abs(raw) + 1e-12, s=10, color="C0", label="H" if i == 0 else None)
        if pre is not None:
            ax.scatter(np.full(len(pre), i + 0.12), np.abs(pre) + 1e-12, s=10, color="C3",
                       label="P^1/2 H P^1/2" if i == 0 else None)
    ax.set_xticks(range(len(items)), [x[0] for x in items], rotation=90, fontsize=6)
    ax.set(yscale="log", ylabel="|eigenvalue|", title="Hessian spectrum (Lanczos extremes)")
    ax.legend(fontsize=7)
    return save(fig, out / "hessian_spectra.png")


def _eigs(block):
    if not isinstance(block, dict):
        return None
    vals = []
    for key in ("top", "bottom", "top_eigenvalues", "bottom_eigenvalues", "eigenvalues"):
        v = block.get(key)
        if isinstance(v, list):
            vals.extend(x for x in v if isinstance(x, (int, float)) and math.isfinite(x))
    return vals or None
