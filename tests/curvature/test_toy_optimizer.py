"""Adding an optimizer is one registry entry: it trains, and curvature reads its P (or says it cannot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from optbench.config import FinetuneConfig
from optbench.curvature import analyse, preconditioner_from_state
from optbench.optim import (
    NoPreconditionerModel,
    OptimizerSpec,
    PreconditionerModel,
    build_optimizer,
    register_optimizer,
    unregister_optimizer,
)
from optbench.optim.spec import group_lr
from optbench.train import finetune

from .conftest import dense_hessian
from .test_analysis import FAST, _train


def _rmsprop(st: dict, g: dict):
    """torch.optim.RMSprop (no momentum, not centred): p -= lr g / (sqrt(v) + eps)."""
    v = st["square_avg"].double()
    return group_lr(g) / (v.sqrt() + float(g["eps"])), {"step": float(st["step"])}


@pytest.fixture
def toy_optimizers():
    """Two toy entries, one with a preconditioner model and one without; removed after the test."""
    register_optimizer(OptimizerSpec("toy_rmsprop", cls="torch.optim:RMSprop", defaults={"alpha": 0.9},
                                     preconditioner=PreconditionerModel("diagonal", _rmsprop)))
    register_optimizer(OptimizerSpec("toy_adagrad", cls="torch.optim:Adagrad"))
    yield "toy_rmsprop", "toy_adagrad"
    unregister_optimizer("toy_rmsprop")
    unregister_optimizer("toy_adagrad")


def test_toy_update_is_minus_P_times_gradient(toy_optimizers):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True)]
    coef = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    opt = build_optimizer("toy_rmsprop", params, 1e-2)
    assert opt.param_groups[0]["alpha"] == 0.9  # the entry's defaults
    for _ in range(3):
        opt.zero_grad()
        (coef * params[0]).sum().backward()
        before = params[0].detach().clone()
        opt.step()
    P = preconditioner_from_state("toy_rmsprop", opt.state_dict(), params)
    assert P.name == "toy_rmsprop" and P.info["step"] == 3
    torch.testing.assert_close(P.apply(coef.reshape(-1)), -(params[0].detach() - before).reshape(-1))


def test_toy_preconditioned_spectrum_matches_dense(toy, toy_optimizers):
    bb, fs, w = toy
    opt = build_optimizer("toy_rmsprop", bb.parameters(), 1e-3)
    state = _train(bb, fs, w, opt, 3)
    res = analyse(bb, fs, w, "toy_rmsprop", state, **FAST)
    H = dense_hessian(bb, fs, w).numpy()
    params = [p for n, p in bb.named_parameters() if not n.startswith("unused")]
    D = np.concatenate([(1e-3 / (opt.state[p]["square_avg"].sqrt() + 1e-8)).reshape(-1).numpy() for p in params])
    mu = np.linalg.eigvalsh(np.sqrt(D)[:, None] * H * np.sqrt(D)[None, :])
    assert res["preconditioner"]["optimizer"] == "toy_rmsprop"
    np.testing.assert_allclose(res["preconditioned"]["top_eigenvalues"], mu[::-1][:4], rtol=1e-4)


def test_an_optimizer_without_a_model_trains_but_curvature_says_it_cannot(toy, toy_optimizers):
    bb, fs, w = toy
    opt = build_optimizer("toy_adagrad", bb.parameters(), 1e-3)
    state = _train(bb, fs, w, opt, 2)
    with pytest.raises(NoPreconditionerModel, match="no preconditioner model for optimizer 'toy_adagrad'"):
        analyse(bb, fs, w, "toy_adagrad", state, **FAST)
    with pytest.raises(NoPreconditionerModel, match="known: .*toy_rmsprop"):  # names the optimizers that have one
        preconditioner_from_state("toy_adagrad", state, bb.parameters())


def test_module_class_shares_a_model_only_with_its_own_class(toy_optimizers):
    p = [torch.zeros(2, requires_grad=True)]
    opt = torch.optim.Adam(p, lr=1e-3)
    p[0].sum().backward()
    opt.step()
    assert preconditioner_from_state("torch.optim:Adam", opt.state_dict(), p).name == "adam"
    with pytest.raises(NoPreconditionerModel):  # a class named Adam elsewhere is not torch's Adam
        preconditioner_from_state(f"{__name__}:Adam", opt.state_dict(), p)


class Adam(torch.optim.SGD):
    """Not torch's Adam, whatever its name."""


def test_toy_optimizer_fine_tunes(run_config, toy_optimizers):
    cfg = FinetuneConfig(**(run_config | {"optimizer": "toy_rmsprop", "lr": 1e-4, "max_steps": 2}))
    result = finetune(cfg)
    assert result["status"] == "completed" and result["steps"] == 2
    assert json.loads((Path(cfg.out) / "results.json").read_text())["optimizer"] == "toy_rmsprop"
