"""Figures of the curvature analysis (PNG): spectral densities, extreme eigenvalues, spectral filter."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from optbench.io import _atomic  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    out = _atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=150, bbox_inches="tight"), mode="wb")
    plt.close(fig)
    return out


def _density_axis(ax, block: dict, label: str, color=None) -> None:
    d = block["density"]
    grid, dens = np.asarray(d["grid"]), np.asarray(d["density"])
    ax.semilogy(grid, np.maximum(dens, 1e-12), label=label, color=color)
    err = np.asarray(d.get("density_stderr", np.full_like(dens, np.nan)), dtype=float)
    if np.all(np.isfinite(err)):
        ax.fill_between(grid, np.maximum(dens - err, 1e-12), dens + err, alpha=0.25, color=ax.lines[-1].get_color())
    ax.set_ylim(bottom=max(1e-8, np.max(dens) * 1e-8))


def plot_density(panels: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """One panel per operator (H, P^1/2 H P^1/2, ...): SLQ spectral density on a log scale."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (label, block) in zip(axes[0], panels.items(), strict=True):
        _density_axis(ax, block, label)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("spectral density")
        ax.set_title(f"{label}\nλmax={block['lambda_max']:.3g}, λmin={block['lambda_min']:.3g}", fontsize=9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_overlay(blocks: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Densities of several runs of the same operator on one axis (e.g. before/after refinement)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, block in blocks.items():
        _density_axis(ax, block, f"{label} (λmax={block['lambda_max']:.3g})")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("spectral density")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def plot_eigenvalues(panels: dict[str, dict], path: str | Path) -> Path:
    """Top and bottom Lanczos eigenvalues with their residual error bars, scaled by λmax."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, block) in enumerate(panels.items()):
        scale = abs(block["lambda_max"]) or 1.0
        top, bottom = np.asarray(block["top_eigenvalues"]), np.asarray(block["bottom_eigenvalues"])
        x = np.arange(1, len(top) + 1) + 0.15 * i
        ax.errorbar(x, top / scale, yerr=np.asarray(block["top_residuals"]) / scale, fmt="o", label=f"{label} top")
        ax.errorbar(-x, bottom / scale, yerr=np.asarray(block["bottom_residuals"]) / scale, fmt="s", label=f"{label} bottom")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("index (negative: from the bottom)")
    ax.set_ylabel("λ / λmax")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_spectral_filter(filters: dict[str, dict], path: str | Path) -> Path:
    """Per optimizer: gain u_i^T P u_i / mean(P) along H's top eigenvectors, against λ_i (log-log);
    1 = no filtering (SGD), below 1 = the optimizer damps that stiff direction."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, f in filters.items():
        lam = np.asarray(f["hessian_eigenvalues"], dtype=float)
        gain = np.asarray(f["relative_gain"], dtype=float)
        ok = (lam > 0) & np.isfinite(gain) & (gain > 0)
        ax.loglog(lam[ok], gain[ok], "o-", label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="identity (SGD)")
    ax.set_xlabel("Hessian eigenvalue λ_i")
    ax.set_ylabel("u_i^T P u_i / mean(P)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_comparison(results: dict[str, dict], out_dir: str | Path) -> list[Path]:
    """For a study: `results` maps an optimizer label to its `analyse(...)` result. Writes the
    spectral filter of every optimizer on one plot and their preconditioned densities against
    λ/λmax (learning rates differ, shapes compare)."""
    out_dir = Path(out_dir)
    files = []
    filters = {name: r["spectral_filter"] for name, r in results.items() if "spectral_filter" in r}
    if filters:
        files.append(plot_spectral_filter(filters, out_dir / "spectral_filter_by_optimizer.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        block = r.get("preconditioned", r["hessian"])
        scale = abs(block["lambda_max"]) or 1.0
        d = block["density"]
        ax.semilogy(np.asarray(d["grid"]) / scale, np.maximum(np.asarray(d["density"]) * scale, 1e-12), label=name)
    ax.set_xlabel("λ / λmax of P^1/2 H P^1/2")
    ax.set_ylabel("spectral density (per unit λ/λmax)")
    ax.legend(fontsize=8)
    files.append(_save(fig, out_dir / "preconditioned_density_by_optimizer.png"))
    return files
