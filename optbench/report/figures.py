"""Figures of a study (PNG): learning curves, error bars, profiles, refinement, properties, spectra."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from optbench.io import read_json  # noqa: E402
from optbench.report.aggregate import StudyData  # noqa: E402


def _colors(names):
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(data: StudyData, out: Path) -> list[Path]:
    colors = _colors(data.optimizers)
    paths = []
    for ds in data.datasets:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        for r in data.selected(ds):
            if r["seed"] != min(x["seed"] for x in data.selected(ds, r["optimizer"])):
                continue
            curve = data.curve(r["trial"])
            steps = [x for x in curve if "loss" in x]
            valid = [x for x in curve if x.get("valid_forces_mae") is not None]
            if steps:
                ax1.plot([x["step"] for x in steps], [x["loss"] for x in steps], color=colors[r["optimizer"]],
                         label=f"{r['optimizer']} ({r['lr']:g})", lw=1)
            if valid:
                ax2.plot([x["step"] for x in valid], [x["valid_forces_mae"] for x in valid], "o-",
                         color=colors[r["optimizer"]], ms=3, lw=1)
        ax1.set(yscale="log", xlabel="step", ylabel="training loss", title=f"{ds}: training loss")
        ax2.set(xlabel="step", ylabel="validation force MAE (meV/Å)", title=f"{ds}: validation")
        ax1.legend(fontsize=7)
        paths.append(_save(fig, out / f"learning_curves_{ds}.png"))
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
    return _save(fig, out / "force_errors.png")


def performance_profile(data: StudyData, out: Path) -> Path:
    prof = data.performance_profile()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    colors = _colors(data.optimizers)
    for opt, curve in prof["curves"].items():
        ax.step(prof["tau"], curve, where="post", label=opt, color=colors[opt])
    ax.set(xlabel="τ (error / best error)", ylabel="share of problems", ylim=(0, 1.05),
           title=f"performance profile ({prof['n_problems']} problems)")
    ax.legend(fontsize=7)
    return _save(fig, out / "performance_profile.png")


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
    return _save(fig, out / "refinement.png")


def _property_points(data: StudyData) -> dict[str, list[tuple[str, float, float]]]:
    """Quantity ('Si eos B0_GPa') -> [(model label, reference, model value)] of every scalar property."""
    pts: dict[str, list[tuple[str, float, float]]] = {}
    labels = {r["trial"]: r["optimizer"] for r in data.rows}
    for prop in data.study.property_files():
        err = read_json(prop.path).get("error_vs_reference")
        if not isinstance(err, dict):
            continue
        label = "pretrained" if prop.pretrained else labels.get(prop.key)
        for name, item in err.items():
            if isinstance(item, dict) and isinstance(item.get("model"), (int, float)) and isinstance(item.get("reference"), (int, float)):
                pts.setdefault(f"{prop.structure} {prop.name} {name}", []).append((label, item["reference"], item["model"]))
    return pts


def property_parity(data: StudyData, out: Path) -> Path | None:
    """One small parity panel per property (its own axis and unit), reference on the diagonal."""
    from optbench.report.labels import split_unit

    pts = _property_points(data)
    if not pts:
        return None
    names = sorted(pts)
    ncol = min(4, len(names))
    nrow = math.ceil(len(names) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.45 * ncol, 2.3 * nrow + 0.4), squeeze=False)
    colors = _colors(sorted({lbl for v in pts.values() for lbl, _, _ in v if lbl}))
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
    colors = _colors(data.optimizers)
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
    return _save(fig, out / "summary.png")


def _manifest_reference(data: StudyData, dataset: str, struct: str, prop: str) -> dict:
    folder = data.index["datasets"].get(dataset, {}).get("folder")
    if not folder or not (Path(folder) / "manifest.json").exists():
        return {}
    refs = read_json(Path(folder) / "manifest.json").get("reference_properties", {})
    return refs.get(struct, {}).get(prop, {}) or {}


def phonon_bands(data: StudyData, out: Path) -> list[Path]:
    """Frequencies at the high-symmetry points of each model (dots) against reference (bars)."""
    paths = []
    labels = {r["trial"]: r["optimizer"] for r in data.rows}
    by_dataset: dict[str, dict] = {}
    for prop in data.study.property_files():
        if prop.name != "phonons":
            continue
        pts = read_json(prop.path).get("high_symmetry_THz")
        if isinstance(pts, dict):
            label = "pretrained" if prop.pretrained else labels.get(prop.key, prop.key)
            by_dataset.setdefault(prop.dataset, {})[(prop.structure, label)] = pts
    for ds_name, entries in sorted(by_dataset.items()):
        for struct in sorted({k[0] for k in entries}):
            ref = _manifest_reference(data, ds_name, struct, "phonons").get("high_symmetry_THz") or {}
            models = sorted(lbl for s, lbl in entries if s == struct)
            colors = _colors(models)
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
            paths.append(_save(fig, out / f"phonons_{ds_name}_{struct}.png"))
    return paths


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
                items.append((f"{r['optimizer']}\n{r['dataset']}:{checkpoint}", raw, pre))
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
    return _save(fig, out / "hessian_spectra.png")


def _eigs(block):
    if not isinstance(block, dict):
        return None
    vals = []
    for key in ("top", "bottom", "top_eigenvalues", "bottom_eigenvalues", "eigenvalues"):
        v = block.get(key)
        if isinstance(v, list):
            vals.extend(x for x in v if isinstance(x, (int, float)) and math.isfinite(x))
    return vals or None


CAPTIONS = {
    "summary": "Which optimizer, where: each panel is one dataset; optimizers (with the learning rate chosen on "
               "validation) are ranked by the force MAE on the first in-distribution test set, best at the top. Bars "
               "are seed means, whiskers 95% intervals; hatched bars had a diverged seed. Overlapping whiskers mean "
               "the ranking is not settled.",
    "learning_curves": "Training loss (left, log scale) and validation force MAE (right) against step for the first "
                       "seed of each optimizer at its selected learning rate. Lower is better; a curve that ends early "
                       "stopped early or diverged.",
    "force_errors": "Force MAE per optimizer on each test set (seed mean, whisker 95% interval), one panel per "
                    "dataset. Compare bars of one colour across optimizers; ID sets are in distribution, OOD sets not.",
    "performance_profile": "Performance profile: for each optimizer, the share of problems (dataset x test set) on "
                           "which its force MAE is within a factor τ of the best optimizer's. Higher and further left "
                           "is better; the value at τ = 1 is the share of problems it wins.",
    "refinement": "Force MAE before (first-order training) and after the L-BFGS refinement stage, per optimizer and "
                  "test set. A lower right bar means the refinement helped.",
    "property_parity": "Physical properties, one panel per quantity with its own axis and unit: model value against "
                       "the reference method's. Points on the dashed diagonal agree with the reference.",
    "hessian_spectra": "Extreme Hessian eigenvalues of the fine-tuning loss (Lanczos, absolute value, log scale) per "
                       "trial and checkpoint: blue the raw Hessian H, red the preconditioned P^1/2 H P^1/2 the "
                       "optimizer sees. A narrower red spread means better conditioning.",
    "phonons": "Phonon frequencies (THz) at the high-symmetry points: black bars the reference, dots each model. "
               "Dots on the bars agree with the reference; negative values are imaginary modes.",
}


def caption(path: Path) -> str:
    """What a figure of `all_figures` shows and how to read it."""
    stem = Path(path).stem
    return next((text for prefix, text in CAPTIONS.items() if stem == prefix or stem.startswith(prefix + "_")), stem)


def all_figures(data: StudyData, out: Path) -> list[Path]:
    """Every figure of the study, the summary first."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in (summary(data, out),) if p]
    paths += [*learning_curves(data, out), error_bars(data, out), performance_profile(data, out)]
    for fn in (refinement, property_parity, hessian_spectra):
        p = fn(data, out)
        if p:
            paths.append(p)
    paths.extend(phonon_bands(data, out))
    return paths
