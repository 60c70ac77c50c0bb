"""Figures of the property results: `*_figure` builds a matplotlib Figure (an artefact of a
property), `plot_*` writes it as PNG, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from optbench.io import write_figure


def plot_bands(band: dict, path: str | Path) -> Path:
    """band_figure written to `path` (PNG)."""
    return write_figure(path, band_figure(band))


def plot_dos(dos: dict, path: str | Path) -> Path:
    """dos_figure written to `path` (PNG)."""
    return write_figure(path, dos_figure(dos))


def plot_curves(x, ys: dict[str, np.ndarray], xlabel: str, ylabel: str, path: str | Path) -> Path:
    """curves_figure written to `path` (PNG)."""
    return write_figure(path, curves_figure(x, ys, xlabel, ylabel))


def band_figure(band: dict) -> Figure:
    """Phonon band structure (THz) along the path segments, labelled at the high-symmetry points."""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    labels = iter(band.get("labels") or [])
    conns = list(band.get("path_connections") or [])
    merged: dict[float, str] = {}

    def tick(pos: float, label: str) -> None:
        key = round(float(pos), 8)
        old = merged.get(key)
        merged[key] = label if old in (None, label) else f"{old}|{label}"

    for i, (d, f) in enumerate(zip(band["distances"], band["frequencies"], strict=True)):
        d, f = np.asarray(d), np.asarray(f)
        ax.plot(d, f, color="C0", lw=1)
        tick(d[0], next(labels, ""))
        if i >= len(conns) or not conns[i]:
            tick(d[-1], next(labels, ""))
    ax.set_xticks(list(merged))
    ax.set_xticklabels(list(merged.values()))
    for t in merged:
        ax.axvline(t, color="0.7", lw=0.5)
    ax.axhline(0, color="0.5", lw=0.5, ls="--")
    ax.set_xlim(min(merged), max(merged))
    ax.set_ylabel("Frequency (THz)")
    return fig


def dos_figure(dos: dict) -> Figure:
    """Total phonon DOS (states/THz) against frequency (THz)."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.plot(dos["frequency_THz"], dos["dos"], color="C0")
    ax.set_xlabel("Frequency (THz)")
    ax.set_ylabel("DOS (states/THz)")
    return fig


def curves_figure(x, ys: dict[str, np.ndarray], xlabel: str, ylabel: str) -> Figure:
    """Simple line plot of one or more named curves."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    for name, y in ys.items():
        ax.plot(x, y, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(ys) > 1:
        ax.legend()
    return fig
