"""Figures of physical properties: parity against the reference, phonons at high-symmetry points."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from optbench.io import read_json
from optbench.report.aggregate import StudyData
from optbench.report.figures.common import colors_for, plt, save
from optbench.report.labels import split_unit


def _property_points(data: StudyData) -> dict[str, list[tuple[str, float, float]]]:
    """Quantity ('Si eos B0_GPa') -> [(model label, reference, model value)] of every scalar property."""
    pts: dict[str, list[tuple[str, float, float]]] = {}
    labels = {r["trial"]: data.arm(r) for r in data.rows}
    for prop in data.study.property_files():
        err = read_json(prop.path).get("error_vs_reference")
        if not isinstance(err, dict) or not (prop.pretrained or prop.key in labels):  # <key>@final: not plotted
            continue
        label = "pretrained" if prop.pretrained else labels[prop.key]
        for name, item in err.items():
            if isinstance(item, dict) and isinstance(item.get("model"), (int, float)) and isinstance(item.get("reference"), (int, float)):
                pts.setdefault(f"{prop.structure} {prop.name} {name}", []).append((label, item["reference"], item["model"]))
    return pts


def property_parity(data: StudyData, out: Path) -> Path | None:
    """One small parity panel per property (its own axis and unit), reference on the diagonal."""


    pts = _property_points(data)
    if not pts:
        return None
    names = sorted(pts)
    ncol = min(4, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.45 * ncol, 2.3 * nrow + 0.4), squeeze=False)
    colors = colors_for(sorted({lbl for v in pts.values() for lbl, _, _ in v if lbl}))
    for ax, name in zip(axes.flat, names):
        struct, prop, quantity = name.split(" ", 2)
        label, unit = split_unit(quantity)
        vals = pts[name]
        for lbl in colors:
            sel = [v for v in vals if v[0] == lbl]
            ax.scatter([v[1] for v in sel], [v[2] for v in sel], s=12, color=colors[lbl], label=lbl)
        lo = min(min(v[1], v[2]) for v in vals)
        hi = max(max(v[1], v[2]) for v in vals)
        pad = 0.05 * (hi - lo or abs(hi) or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.7)
        u = f" ({unit})" if unit else ""
        ax.set_title(f"{struct} {prop}: {label.replace('_', ' ')}", fontsize=8)
        ax.set_xlabel(f"reference{u}", fontsize=7)
        ax.set_ylabel(f"model{u}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(out / "property_parity.png", dpi=110)
    plt.close(fig)
    return out / "property_parity.png"


def _manifest_reference(data: StudyData, dataset: str, struct: str, prop: str) -> dict:
    """The dataset manifest's reference value: from an export's own copy (what the export was made from),
    else from the dataset folder."""
    from optbench.report.export import exported_manifest

    path = exported_manifest(data.study, dataset)
    if not path.is_file():
        folder = data.index["datasets"].get(dataset, {}).get("folder")
        path = Path(folder) / "manifest.json" if folder else None
    if path is None or not path.is_file():
        return {}
    refs = read_json(path).get("reference_properties", {})
    return refs.get(struct, {}).get(prop, {}) or {}


def phonon_bands(data: StudyData, out: Path) -> list[Path]:
    """Frequencies at the high-symmetry points of each model (dots) against reference (bars)."""
    paths = []
    labels = {r["trial"]: data.arm(r) for r in data.rows}
    by_dataset: dict[str, dict] = {}
    for prop in data.study.property_files():
        if prop.name != "phonons" or not (prop.pretrained or prop.key in labels):  # <key>@final: not plotted
            continue
        pts = read_json(prop.path).get("high_symmetry_THz")
        if isinstance(pts, dict):
            label = "pretrained" if prop.pretrained else labels.get(prop.key, prop.key)
            by_dataset.setdefault(prop.dataset, {})[(prop.structure, label)] = pts
    for ds_name, entries in sorted(by_dataset.items()):
        for struct in sorted({k[0] for k in entries}):
            ref = _manifest_reference(data, ds_name, struct, "phonons").get("high_symmetry_THz") or {}
            models = sorted(lbl for s, lbl in entries if s == struct)
            colors = colors_for(models)
            names = list(next(v for (s, _), v in entries.items() if s == struct))
            fig, ax = plt.subplots(figsize=(6, 3.8))
            for i, name in enumerate(names):
                if name in ref:
                    ax.hlines(np.asarray(ref[name], float).ravel(), i - 0.4, i + 0.4, colors="k", lw=1,
                              label="reference" if i == 0 else None)
                for j, lbl in enumerate(models):
                    f = np.asarray(entries[(struct, lbl)].get(name, []), float).ravel()
                    x = i - 0.3 + 0.6 * j / max(len(models) - 1, 1)
                    ax.scatter(np.full(f.size, x), f, s=9, color=colors[lbl], label=lbl if i == 0 else None)
            ax.set_xticks(range(len(names)), names)
            ax.set(ylabel="frequency (THz)", title=f"{ds_name} {struct}: phonons at high-symmetry points")
            ax.legend(fontsize=6, ncol=2)
            paths.append(save(fig, out / f"phonons_{ds_name}_{struct}.png"))
    return paths
