"""Curvature under a strategy, on the toy against dense matrices: frozen parameters are out of the
operator, each group's LR factor enters P, and the preconditioned spectrum reads the optimizer state
of a multi-group optimizer in its own order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optbench.config import FinetuneConfig
from optbench.curvature import analyse, build_hvp_operator, preconditioner_from_state
from optbench.data.io import read_frames
from optbench.errors import InputError
from optbench.loss import FeaturizedSet, LossWeights, compute_loss
from optbench.optim import build_optimizer
from optbench.strategies import flat_parameters, named_groups, prepare
from tests.curvature.conftest import dense_hessian
from tests.curvature.toy import ETHANOL, ToyBackbone

W = LossWeights(energy=1.0, forces=10.0, stress=0.0)
FAST = {"k": 4, "n_iter": 40, "n_probes": 4, "n_slq": 2, "progress": False}


def _setup(strategy: str = "full", factors: dict | None = None, optimizer: str = "adam"):
    bb = ToyBackbone()
    cfg = FinetuneConfig(train=ETHANOL, optimizer=optimizer, lr=1e-3, strategy=strategy, lr_factors=factors or {})
    groups = prepare(bb, cfg)
    return bb, groups, FeaturizedSet(read_frames(ETHANOL, index=":4"), bb)


def _step(bb, fs, opt, steps: int = 2) -> dict:
    batch = fs.batch(range(len(fs)))
    for _ in range(steps):
        opt.zero_grad()
        compute_loss(bb, batch, W)[0].backward()
        opt.step()
    return opt.state_dict()


def _coords(named) -> dict[str, slice]:
    out, start = {}, 0
    for n, p in named:
        out[n] = slice(start, start + p.numel())
        start += p.numel()
    return out


def test_frozen_parameters_are_out_of_the_operator():
    full, _, fs_full = _setup()
    H = dense_hessian(full, fs_full, W).numpy()  # over every parameter with a gradient (not `unused`)
    at = _coords([(n, p) for n, p in full.named_parameters() if not n.startswith("unused")])
    bb, _, fs = _setup("freeze:readout,reference")
    op = build_hvp_operator(bb, fs, W)
    assert set(op.space.names) == {n for n in at if n.startswith(("net.0", "net.2"))}
    keep = np.concatenate([np.arange(at[n].start, at[n].stop) for n in op.space.names])
    dense = torch.stack([op(e) for e in torch.eye(op.dim, dtype=torch.float64)], 1).numpy()
    np.testing.assert_allclose(dense, H[np.ix_(keep, keep)], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "radam", "schedulefree"])
def test_a_groups_factor_scales_its_block_of_P(optimizer):
    """One step from the same weights on the same batch: the states agree, so P of the group with factor
    0.1 is 0.1 x P of the run without factors, and every other block is the same."""
    blocks = {}
    for factors in (None, {"readout": 0.1}):
        bb, groups, fs = _setup(factors=factors, optimizer=optimizer)
        opt = build_optimizer(optimizer, groups, 1e-3)
        state = _step(bb, fs, opt, 1)
        named = [item for *_, members in named_groups(bb, factors) for item in members]
        assert [id(p) for _, p in named] == [id(p) for p in flat_parameters(groups)]
        used = [i for i, (n, _) in enumerate(named) if not n.startswith("unused")]
        P = preconditioner_from_state(optimizer, state, [p for _, p in named], select=used)
        diag = P.apply(torch.ones(P.dim, dtype=torch.float64))
        at = _coords([named[i] for i in used])
        blocks[factors is None] = {n: diag[s] for n, s in at.items()}
    for n, plain in blocks[True].items():
        factor = 0.1 if n.startswith("net.4") else 1.0
        torch.testing.assert_close(blocks[False][n], factor * plain, rtol=1e-10, atol=0)


def test_preconditioned_spectrum_of_a_multi_group_optimizer_matches_dense():
    """Adam with factors on a frozen toy: analyse() pairs each state entry with its parameter (optimizer
    order) and gives the spectrum of D^1/2 H D^1/2, D = lr x factor / (sqrt(v_hat) + eps), over the
    trainable parameters."""
    factors = {"embedding": 0.1, "interaction": 4.0}
    bb, groups, fs = _setup("freeze:reference", factors)
    opt = build_optimizer("adam", groups, 1e-3)
    state = _step(bb, fs, opt, 3)
    named = [item for *_, members in named_groups(bb, factors) for item in members]
    with pytest.raises(InputError, match="named_params"):  # the model's order would pair states wrongly
        analyse(bb, fs, W, "adam", state, **FAST)
    res = analyse(bb, fs, W, "adam", state, named_params=named, **FAST)
    order = [n for n, _ in bb.named_parameters() if not n.startswith("unused")]  # the dense Hessian's order
    H = dense_hessian(bb, fs, W).numpy()
    lr = {n: g["lr"] for g in opt.param_groups for n, p in named if any(p is q for q in g["params"])}
    params = dict(bb.named_parameters())
    D = np.concatenate([(lr[n] / ((opt.state[params[n]]["exp_avg_sq"] / (1 - 0.999**3)).sqrt() + 1e-8))
                        .reshape(-1).numpy() for n in order])
    mu = np.linalg.eigvalsh(np.sqrt(D)[:, None] * H * np.sqrt(D)[None, :])
    assert res["n_params_analysed"] == len(D)
    np.testing.assert_allclose(res["preconditioned"]["top_eigenvalues"], mu[::-1][:4], rtol=1e-4)


def test_curvature_of_a_run_folder_rebuilds_its_strategy(tmp_path):
    """`optbench curvature` on a toy run with frozen groups and factors: the operator is over the run's
    trainable parameters, and P pairs the saved multi-group state with them (same spectrum as above)."""
    from optbench.backbones import register_backbone, unregister_backbone
    from optbench.curvature import run_curvature
    from optbench.train import finetune

    register_backbone("toy", "tests.curvature.toy:load")
    try:
        res = finetune(dict(model="toy", train=ETHANOL, optimizer="adam", lr=1e-3, batch_size=4, max_steps=3,
                            strategy="freeze:readout", lr_factors={"embedding": 0.1}, loss_weights={"stress": 0.0},
                            valid_fraction=0.0, e0="keep", refine="lbfgs", refine_steps=2, out=tmp_path / "run"))
        curv = {ck: run_curvature(run_dir=tmp_path / "run", checkpoint=ck, data=ETHANOL, n_structures=4, k=2,
                                  n_iter=6, n_probes=0, n_slq=1, out=tmp_path / ck, progress=False)
                for ck in ("final", "refined")}
    finally:
        unregister_backbone("toy")
    trainable = ToyBackbone().parameter_groups()
    analysed = sum(ToyBackbone().model.get_parameter(n).numel() for g in ("embedding", "interaction", "reference")
                   for n in trainable[g] if not n.startswith("unused"))
    assert res["trainable_parameters"] == analysed + 6  # `unused` trains (no gradient), is never analysed
    for ck, out in curv.items():
        assert out["n_params_analysed"] == analysed and out["preconditioned"]["dim"] == analysed, ck
    assert curv["final"]["preconditioner"]["optimizer"] == "adam"
    assert curv["refined"]["preconditioner"]["optimizer"] == "lbfgs"  # the refinement's history, same order
