"""The curvature analysis on the real CHGNet backbone, on a few ethanol frames."""

import json

import numpy as np
import pytest
import torch

from optbench.cli import main
from optbench.curvature import build_hvp_operator, run_curvature
from optbench.data.io import read_frames
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights

from .toy import ETHANOL, finite_difference_hvp

FEW = {"n_iter": 3, "n_probes": 1, "n_slq": 1, "progress": False}


@pytest.fixture(scope="module")
def chgnet():
    from optbench.backbones import load_backbone

    return load_backbone("chgnet")


@pytest.fixture(scope="module")
def two_frames():
    return read_frames(ETHANOL, index=":2")


def test_chgnet_hvp_is_the_derivative_of_the_gradient(chgnet, two_frames):
    fs = FeaturizedSet(two_frames, chgnet)
    w = LossWeights()
    op = build_hvp_operator(chgnet, fs, w)
    # parameters outside the energy/force graph get no gradient: listed and left out, no crash
    assert "site_wise.weight" in op.unused and op.dim < sum(p.numel() for p in chgnet.parameters())
    gen = torch.Generator().manual_seed(0)
    u, v = (torch.randn(op.dim, dtype=torch.float64, generator=gen) for _ in range(2))
    hv, hu = op(v), op(u)
    assert abs(float(u @ hv - v @ hu)) < 1e-5 * float(u.norm() * hv.norm())  # symmetric to float32 precision
    fd = finite_difference_hvp(chgnet, fs, w, op, v, eps=1e-2 / float(v.norm()))
    assert float((fd - hv).norm() / hv.norm()) < 1e-2


def test_chgnet_gauss_newton_is_symmetric_psd(chgnet, two_frames):
    fs = FeaturizedSet(two_frames, chgnet)
    gn = build_hvp_operator(chgnet, fs, LossWeights(), gauss_newton=True)
    gen = torch.Generator().manual_seed(1)
    u, v = (torch.randn(gn.dim, dtype=torch.float64, generator=gen) for _ in range(2))
    gv, gu = gn(v), gn(u)
    assert abs(float(u @ gv - v @ gu)) < 1e-4 * float(u.norm() * gv.norm())
    assert float(v @ gv) > 0 and float(u @ gu) > 0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real (tiny) finetune run: AdamW for 2 steps, then 3 L-BFGS refinement steps."""
    from ase.io import read, write

    from optbench.config import FinetuneConfig
    from optbench.train import finetune

    tmp = tmp_path_factory.mktemp("run")
    write(tmp / "train.xyz", read(ETHANOL, index=":2"), format="extxyz")
    cfg = FinetuneConfig(model="chgnet", train=tmp / "train.xyz", optimizer="adamw", lr=1e-4, batch_size=2,
                         max_steps=2, valid_fraction=0.0, refine="lbfgs", refine_steps=3, refine_structures=2,
                         out=tmp / "run", seed=0)
    result = finetune(cfg)
    assert result["status"] == "completed"
    return tmp / "run"


def test_run_curvature_refined_has_before_and_after(run_dir, tmp_path):
    out = tmp_path / "curv"
    res = run_curvature(run_dir=run_dir, checkpoint="refined", data=ETHANOL, n_structures=2, k=2, seed=0, out=out, **FEW)
    data = json.loads((out / "curvature.json").read_text())
    assert data["optimizer"] == "lbfgs" and data["preconditioner"]["history"] >= 1
    assert data["before_refinement"]["optimizer"] == "adamw"
    assert data["before_refinement"]["preconditioner"]["step"] == 2
    for block in (data["hessian"], data["preconditioned"], data["before_refinement"]["preconditioned"]):
        assert len(block["top_eigenvalues"]) == 2 and block["lambda_max"] >= block["top_eigenvalues"][1]
        assert all(r >= 0 for r in block["top_residuals"])
    assert data["n_params_analysed"] < data["n_params"]
    assert len(data["spectral_filter"]["rayleigh_P"]) == 2
    for png in ("spectral_density.png", "eigenvalues.png", "spectral_filter.png", "refinement_density.png",
                "refinement_preconditioned_density.png"):
        assert (out / png).stat().st_size > 1000
    assert res["wall_time_s"] > 0


def test_cli_start_checkpoint_hessian_only_and_bad_input(run_dir, tmp_path, capsys):
    out = tmp_path / "c0"
    rc = main(["curvature", "--run", str(run_dir), "--checkpoint", "start", "--data", str(ETHANOL),
               "--n-structures", "1", "--k", "1", "--lanczos-iter", "3", "--probes", "0", "--slq-vectors", "1",
               "--out", str(out)])
    assert rc == 0
    data = json.loads((out / "curvature.json").read_text())
    assert "preconditioned" not in data and np.isfinite(data["hessian"]["lambda_max"])
    assert len(data["structure_indices"]) == 1 and data["hessian"]["lanczos_iterations"] == 3
    bad = tmp_path / "bad"
    missing = tmp_path / "missing.xyz"
    rc = main(["curvature", "--run", str(run_dir), "--data", str(missing), "--out", str(bad)])
    assert rc == 2 and "missing.xyz" in capsys.readouterr().err
    assert not bad.exists()  # validated before anything is written
    only_config = tmp_path / "run_without_checkpoints"
    only_config.mkdir()
    (only_config / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    rc = main(["curvature", "--run", str(only_config), "--data", str(ETHANOL), "--out", str(bad)])
    assert rc == 2 and "final.pt" in capsys.readouterr().err
    with pytest.raises(InputError, match="run folder not found"):
        run_curvature(run_dir=tmp_path / "nope", data=ETHANOL, out=bad)


def test_preconditioned_spectrum_beside_hessian_gives_the_same_numbers(run_dir, tmp_path):
    """P^1/2 H P^1/2 on a copy of the model in a thread beside H's spectrum (optbench.threads.Beside) gives
    the numbers of the analysis in one thread, bit for bit: the thread builds the graph it differentiates."""
    few = {**FEW, "n_iter": 4, "n_probes": 2, "n_slq": 2}
    runs = {b: run_curvature(run_dir=run_dir, checkpoint="final", data=ETHANOL, n_structures=2, k=2, seed=0,
                             out=tmp_path / str(b), beside=b, **few) for b in (False, True)}
    assert runs[True]["preconditioned_beside"] and not runs[False]["preconditioned_beside"]
    for key in ("hessian", "preconditioned"):
        for field in ("top_eigenvalues", "bottom_eigenvalues", "top_residuals", "trace_hutchinson", "trace_slq",
                      "slq_nodes"):
            np.testing.assert_array_equal(runs[True][key][field], runs[False][key][field])
    np.testing.assert_array_equal(runs[True]["spectral_filter"]["rayleigh_P"], runs[False]["spectral_filter"]["rayleigh_P"])
    assert runs[True]["preconditioned"]["lambda_max"] > 0


def test_preconditioned_spectrum_waits_for_h_where_the_memory_lacks_a_second_operator(run_dir, tmp_path, monkeypatch):
    import optbench.curvature.analysis as analysis

    monkeypatch.setattr(analysis, "available_bytes", lambda: 0)
    res = run_curvature(run_dir=run_dir, checkpoint="final", data=ETHANOL, n_structures=2, k=2, seed=0,
                        out=tmp_path / "c", beside=True, **FEW)
    assert res["preconditioned_beside"] is False and res["preconditioned"]["lambda_max"] > 0
