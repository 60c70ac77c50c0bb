"""`optbench curvature`: the curvature analysis of one checkpoint of a finetune RUN_DIR."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from optbench.curvature.analysis import analyse
from optbench.errors import InputError
from optbench.io import check_writable_dir, torch_load, write_json
from optbench.layout import CHECKPOINT_TAGS as CHECKPOINTS
from optbench.layout import CURVATURE_JSON, RunDir
from optbench.threads import beside_by_default


def load_checkpoint(run_dir: str | Path, checkpoint: str):
    """(FinetuneConfig, checkpoint dict) of a RUN_DIR; InputError naming the file when missing or malformed."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise InputError("run folder not found", file=run.path, field="run")
    if checkpoint not in CHECKPOINTS:
        raise InputError(f"unknown checkpoint '{checkpoint}' (known: {', '.join(CHECKPOINTS)})", field="checkpoint")
    config = run.config(device="cpu")  # the device the analysis runs on is its own
    path = run.checkpoint(checkpoint)
    if not path.is_file():
        have = run.checkpoints()
        raise InputError(f"no '{checkpoint}' checkpoint (have: {', '.join(have) or 'none'})", file=path, field="checkpoint")
    return config, torch_load(path, required=("model_state", "optimizer"))


def _backbone(config, ckpt: dict, path: Path, device: str = "cpu"):
    from optbench.backbones import load_backbone
    from optbench.strategies import apply_strategy

    backbone = load_backbone(config.model, device)
    apply_strategy(backbone, config.strategy)  # the run's frozen groups (and adapters) before its weights
    try:
        backbone.model.load_state_dict(ckpt["model_state"])
    except RuntimeError as err:
        raise InputError(f"weights do not fit model '{config.model}' ({str(err).splitlines()[0]})", file=path, field="model_state") from None
    return backbone


def _frames(data: str | Path, config, n_structures: int, seed: int):
    from optbench.data.io import LabelKeys, read_frames

    keys = LabelKeys(config.energy_key, config.forces_key, config.stress_key, config.virial_key)
    frames = read_frames(data, keys)
    n = min(n_structures, len(frames))
    idx = np.sort(np.random.default_rng(seed).choice(len(frames), size=n, replace=False))
    return [frames[i] for i in idx], idx.tolist()


def _check_settings(data, n_structures: int, k: int, n_iter: int | None, n_probes: int | None, n_slq: int) -> None:
    """InputError naming the flag of the first bad setting."""
    if data is None:
        raise InputError("a data file is required", field="data")
    if n_structures < 1:
        raise InputError("must be >= 1", field="n_structures")
    if k < 1:
        raise InputError("must be >= 1", field="k")
    if n_iter is not None and n_iter < 2:
        raise InputError("must be >= 2", field="lanczos_iter")
    if n_probes is not None and n_probes < 0:
        raise InputError("must be >= 0", field="probes")
    if n_slq < 1:
        raise InputError("must be >= 1", field="slq_vectors")


def run_curvature(
    run_dir: str | Path,
    checkpoint: str = "final",
    data: str | Path | None = None,
    n_structures: int = 32,
    k: int = 10,
    gauss_newton: bool = False,
    seed: int = 0,
    out: str | Path = "curvature",
    *,
    n_iter: int | None = None,
    n_probes: int | None = None,
    n_slq: int = 3,
    progress: bool = True,
    device: str = "cpu",
    beside: bool | None = None,
) -> dict:
    """Spectra of H and of P^1/2 H P^1/2 at one checkpoint; writes OUT/curvature.json and PNGs.

    For `checkpoint="refined"` the final (pre-refinement) checkpoint is analysed too, so the effect
    of the L-BFGS stage on the spectrum is in the same file. Defaults: n_iter = 2k + 10 Lanczos
    steps, n_probes = k Hutchinson probes (deflated by the Krylov basis), n_slq SLQ vectors. `beside`: P^1/2 H
    P^1/2's spectrum in a thread beside H's (default `threads.beside_by_default`; the same numbers).
    """
    _check_settings(data, n_structures, k, n_iter, n_probes, n_slq)
    t0 = time.perf_counter()
    run, out = RunDir(run_dir), Path(out)
    config, ckpt = load_checkpoint(run.path, checkpoint)
    before = load_checkpoint(run.path, "final") if checkpoint == "refined" and run.checkpoint("final").is_file() else None
    frames, indices = _frames(data, config, n_structures, seed)
    check_writable_dir(out)
    weights = config.loss_weights
    beside = beside_by_default(device) if beside is None else beside
    opts = {
        "k": k, "n_iter": n_iter if n_iter is not None else 2 * k + 10,
        "n_probes": n_probes if n_probes is not None else k, "n_slq": n_slq,
        "gauss_newton": gauss_newton, "seed": seed, "progress": progress, "beside": beside,
    }
    hparams = {key: v for key, v in config.optimizer_kwargs.items() if key != "lr"}
    at = {"frames": frames, "name": Path(data).stem, "weights": weights, "hparams": hparams, "opts": opts, "device": device}
    res = _analyse_at(config, ckpt, run.checkpoint(checkpoint), **at)
    result = {
        "run_dir": str(run_dir), "checkpoint": checkpoint, "step": ckpt.get("step"),
        "optimizer": ckpt["optimizer"], "model": config.model, "data": str(data),
        "structure_indices": indices, "n_structures": len(indices), "seed": seed,
        "settings": {key: v for key, v in opts.items() if key not in ("progress", "beside")},
        "loss_weights": weights.model_dump(), **res,
    }
    panels = {"H" if not gauss_newton else "G (Gauss-Newton)": res["hessian"]}
    if "preconditioned" in res:
        panels[f"P^1/2 H P^1/2 ({res['preconditioner']['optimizer']})"] = res["preconditioned"]
    if before is not None:
        b_config, b_ckpt = before
        result["before_refinement"] = _analyse_at(b_config, b_ckpt, run.checkpoint("final"), **at)
        result["before_refinement"].update({"checkpoint": "final", "optimizer": b_ckpt["optimizer"], "step": b_ckpt.get("step")})
    result["wall_time_s"] = time.perf_counter() - t0
    _figures(result, panels, out)
    write_json(out / CURVATURE_JSON, result)
    return result


def _analyse_at(config, ckpt: dict, path: Path, *, frames, name: str, weights, hparams: dict, opts: dict,
                device: str) -> dict:
    """`analyse` of the backbone and optimizer state saved in checkpoint `ckpt` (file `path`)."""
    from optbench.loss import FeaturizedSet
    from optbench.strategies import named_groups

    backbone = _backbone(config, ckpt, path, device)
    fset = FeaturizedSet(frames, backbone, name=name)
    named = [item for _, _, members in named_groups(backbone, config.lr_factors) for item in members]  # optimizer order
    return analyse(backbone, fset, weights, ckpt["optimizer"], ckpt.get("optimizer_state"), hparams=hparams,
                   named_params=named, **opts)


def _figures(result: dict, panels: dict, out: Path) -> list[Path]:
    from optbench.curvature import plots

    files = [
        plots.plot_density(panels, out / "spectral_density.png", title=f"{result['optimizer']} @ {result['checkpoint']}"),
        plots.plot_eigenvalues(panels, out / "eigenvalues.png"),
    ]
    filters = {}
    if "spectral_filter" in result:
        filters[result["preconditioner"]["optimizer"] + f" @ {result['checkpoint']}"] = result["spectral_filter"]
    before = result.get("before_refinement")
    if before is not None:
        if "spectral_filter" in before:
            filters[before["preconditioner"]["optimizer"] + " @ final"] = before["spectral_filter"]
        files.append(plots.plot_overlay(
            {"H before refinement (final)": before["hessian"], "H after refinement": result["hessian"]},
            out / "refinement_density.png", title="Hessian spectrum before and after L-BFGS refinement",
        ))
        if "preconditioned" in before and "preconditioned" in result:
            files.append(plots.plot_overlay(
                {f"P^1/2HP^1/2 {before['preconditioner']['optimizer']} (final)": before["preconditioned"],
                 "P^1/2HP^1/2 lbfgs (refined)": result["preconditioned"]},
                out / "refinement_preconditioned_density.png", title="Preconditioned spectrum before and after refinement",
            ))
    if filters:
        files.append(plots.plot_spectral_filter(filters, out / "spectral_filter.png"))
    return files
