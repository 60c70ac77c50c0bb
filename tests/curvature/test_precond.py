"""Preconditioners read from real optimizer states, checked against the updates the optimizers make."""

import numpy as np
import pytest
import torch

from optbench.curvature import LBFGSPreconditioner, preconditioner_from_state
from optbench.errors import InputError
from optbench.optim import build_optimizer

_KW = {"adamw": {"weight_decay": 0.05}, "ranger": {"k": 10_000, "use_gc": False}, "schedulefree": {"warmup_steps": 20}}


def _make(name, params, lr):
    """The optimizer exactly as optbench's registry builds it (SGD: momentum 0.9, Nesterov)."""
    return build_optimizer(name, params, lr, **_KW.get(name, {}))


@pytest.mark.parametrize("name,steps", [
    ("adam", 3), ("adamw", 7), ("radam", 3), ("radam", 9), ("sgd", 400),
    ("lamb", 4), ("ranger", 3), ("ranger", 9), ("schedulefree", 5), ("schedulefree", 30),
])
def test_update_is_minus_P_times_gradient(name, steps):
    """Under a constant gradient every momentum average is at its steady gain, so the last update
    must equal -P g with P read from the state the optimizer left (bias corrections included)."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True),
              torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)]
    coef = [torch.randn(p.shape, generator=gen, dtype=torch.float64) * (1 + i) for i, p in enumerate(params)]
    lr = 1e-2
    opt = _make(name, params, lr)
    for _ in range(steps):
        opt.zero_grad()
        sum((c * p).sum() for c, p in zip(coef, params, strict=True)).backward()
        before = [opt.state[p]["z"].clone() if "z" in opt.state[p] else p.detach().clone() for p in params]
        opt.step()
    after = [p.detach() if name != "schedulefree" else opt.state[p]["z"] for p in params]
    delta = torch.cat([(a - b).reshape(-1) for a, b in zip(after, before, strict=True)])
    if name == "adamw":  # decoupled decay is a separate term, not part of P
        delta += lr * 0.05 * torch.cat([b.reshape(-1) for b in before])
    g = torch.cat([c.reshape(-1) for c in coef])
    P = preconditioner_from_state(name, opt.state_dict(), params)
    Pg = P.apply(g)
    if name == "ranger":
        Pg = Pg / P.info["lookahead_alpha"]  # Lookahead scales the step only at its sync points
    torch.testing.assert_close(Pg, -delta, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(P.sign * P.apply_sqrt(P.apply_sqrt(g)), P.apply(g))
    if name in ("radam", "ranger"):
        assert P.info["rectified"] == (steps > 5)
    assert P.sign == 1.0


def test_library_default_ranger_steps_uphill_before_rectification():
    """pytorch_optimizer.Ranger(degenerated_to_sgd=False) moves along +m for its first steps; P = -lr·α."""
    import pytorch_optimizer

    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = pytorch_optimizer.Ranger([p], lr=0.1, degenerated_to_sgd=False, k=100)
    before = p.detach().clone()
    p.sum().backward()
    opt.step()
    P = preconditioner_from_state("ranger", opt.state_dict(), [p], {"degenerated_to_sgd": False})
    assert P.sign == -1.0 and not P.info["rectified"]
    g = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(P.apply(g) / P.info["lookahead_alpha"], -(p.detach() - before))
    assert float((p.detach() - before).sum()) > 0  # uphill


def test_lamb_trust_ratio_is_per_tensor():
    import pytorch_optimizer

    a = torch.full((4,), 3.0, requires_grad=True)
    b = torch.full((4,), 0.1, requires_grad=True)
    opt = pytorch_optimizer.Lamb([a, b], lr=1e-3)
    (a.sum() + b.sum()).backward()
    opt.step()
    P = preconditioner_from_state("lamb", opt.state_dict(), [a, b])
    d = P.diag.numpy()
    assert np.allclose(d[:4], d[0]) and np.allclose(d[4:], d[4])
    assert d[0] / d[4] == pytest.approx(30.0, rel=1e-3)  # ratio of weight norms (same Adam step)
    adam_update_norm = 2 * 0.1 / (0.001**0.5 + 1e-6)  # |m / (sqrt(v) + eps)| after one step, 4 entries
    assert P.info["trust_ratio"]["max"] == pytest.approx(6.0 / (adam_update_norm + 1e-6), rel=1e-5)


def _dense_bfgs(s_list, y_list, gamma):
    n = s_list[0].numel()
    H = gamma * torch.eye(n, dtype=torch.float64)
    for s, y in zip(s_list, y_list, strict=True):
        rho = 1.0 / float(y @ s)
        V = torch.eye(n, dtype=torch.float64) - rho * torch.outer(y, s)
        H = V.T @ H @ V + rho * torch.outer(s, s)
    return H


def test_lbfgs_operator_equals_dense_inverse_bfgs(toy):
    from optbench.loss import compute_loss

    bb, fs, w = toy
    params = bb.parameters()
    opt = torch.optim.LBFGS(params, lr=0.5, history_size=4, max_iter=1, line_search_fn="strong_wolfe")
    batch = fs.batch(range(len(fs)))

    def closure():
        opt.zero_grad()
        loss = compute_loss(bb, batch, w)[0]
        loss.backward()
        return loss

    for _ in range(7):
        opt.step(closure)
    sd = opt.state_dict()
    st = sd["state"][0]
    assert len(st["old_dirs"]) == 4  # history full: the oldest pairs were dropped
    P = preconditioner_from_state("lbfgs", sd, params)
    H = 0.5 * _dense_bfgs([s.double() for s in st["old_stps"]], [y.double() for y in st["old_dirs"]], float(st["H_diag"]))
    E = torch.eye(P.dim, dtype=torch.float64)
    dense_op = torch.stack([P.apply(E[i]) for i in range(P.dim)], dim=1)
    torch.testing.assert_close(dense_op, H, rtol=1e-9, atol=1e-12)
    sq = torch.stack([P.apply_sqrt(E[i]) for i in range(P.dim)], dim=1)
    torch.testing.assert_close(sq @ sq, H, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(sq, sq.T, rtol=1e-8, atol=1e-10)
    assert P.trace() == pytest.approx(float(torch.trace(H)), rel=1e-9)
    # a block of the parameters (e.g. those that got a gradient): the sub-block of lr*H_k, exactly
    Psub = preconditioner_from_state("lbfgs", sd, params, select=[0, 1, 4])
    n0, n1 = params[0].numel(), params[1].numel()
    off4 = sum(p.numel() for p in params[:4])
    coords = torch.cat([torch.arange(0, n0 + n1), torch.arange(off4, off4 + params[4].numel())])
    Hs = H[coords][:, coords]
    Es = torch.eye(Psub.dim, dtype=torch.float64)
    sqs = torch.stack([Psub.apply_sqrt(Es[i]) for i in range(Psub.dim)], dim=1)
    torch.testing.assert_close(sqs @ sqs, Hs, rtol=1e-8, atol=1e-10)


def test_lbfgs_without_history_is_lr_identity():
    P = LBFGSPreconditioner([], [], [], 1.0, 0.3, 5)
    v = torch.arange(5.0, dtype=torch.float64)
    torch.testing.assert_close(P.apply(v), 0.3 * v)
    torch.testing.assert_close(P.apply_sqrt(P.apply_sqrt(v)), 0.3 * v)


def test_bad_states_are_input_errors():
    p = [torch.zeros(3, requires_grad=True)]
    with pytest.raises(InputError, match="no preconditioner model"):
        preconditioner_from_state("adagrad", {"state": {}, "param_groups": []}, p)
    opt = torch.optim.Adam(p, lr=1e-3)
    with pytest.raises(InputError, match="no entry for parameter 0"):
        preconditioner_from_state("adam", opt.state_dict(), p)


def test_scheduled_lr_is_read_and_a_finished_schedule_falls_back_to_initial_lr():
    p = [torch.ones(3, requires_grad=True)]
    opt = torch.optim.SGD(p, lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 if step < 1 else 0.0)
    P = preconditioner_from_state("sgd", opt.state_dict(), p)
    assert P.info["lr"] == pytest.approx(0.05) and P.diag[0] == pytest.approx(0.05)
    p[0].sum().backward()
    opt.step()
    sched.step()  # lr is now 0: report the schedule's base lr instead of a zero operator
    P = preconditioner_from_state("sgd", opt.state_dict(), p)
    assert P.diag[0] == pytest.approx(0.1) and P.info["initial_lr"] == 0.1


def test_ranger_trains_without_gradient_centralisation_as_P_models_it():
    """The registry's Ranger (no use_gc given) must step -P g on a 2-D weight whose gradient rows
    have a nonzero mean; gradient centralisation would subtract that mean and break the model."""
    w = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    coef = torch.arange(12, dtype=torch.float64).reshape(3, 4) + 1.0
    opt = build_optimizer("ranger", [w], 1e-2, k=10_000)
    for _ in range(8):
        opt.zero_grad()
        before = w.detach().clone()
        (coef * w).sum().backward()
        opt.step()
    P = preconditioner_from_state("ranger", opt.state_dict(), [w])
    step = -(w.detach() - before).reshape(-1)
    torch.testing.assert_close(P.apply(coef.reshape(-1)) / P.info["lookahead_alpha"], step, rtol=1e-6, atol=1e-12)


def test_ranger_with_gradient_centralisation_is_refused():
    w = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = build_optimizer("ranger", [w], 1e-2, use_gc=True)
    (w.sum()).backward()
    opt.step()
    with pytest.raises(InputError, match="use_gc"):
        preconditioner_from_state("ranger", opt.state_dict(), [w], {"use_gc": True})
