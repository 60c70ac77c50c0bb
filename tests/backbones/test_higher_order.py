"""Closed-form higher derivatives (optbench.backbones.higher_order) against references built from
primitive ops, and against finite differences, up to the Hessian-vector product of a force loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optbench.backbones import higher_order

DT = torch.float64


def _layer_norm_primitive(x, module):
    """Layer norm from primitives: autograd differentiates it correctly to every order (torch's own
    fused layer norm does not past the second, pytorch#175754)."""
    xc = x - x.mean(-1, keepdim=True)
    n = xc * ((xc * xc).mean(-1, keepdim=True) + module.eps).rsqrt()
    return n * module.weight + module.bias


def _silu_primitive(x):
    return x * torch.sigmoid(x)


class _Toy(nn.Module):
    """E(x) = sum(v * tanh(act(norm(x W)))): the structure of a gated MLP on a geometry."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(3, 6, generator=gen, dtype=DT))
        self.v = nn.Parameter(torch.randn(6, generator=gen, dtype=DT))
        self.norm = nn.LayerNorm(6, dtype=DT)
        with torch.no_grad():
            self.norm.weight.copy_(1 + 0.3 * torch.randn(6, generator=gen, dtype=DT))
            self.norm.bias.copy_(0.3 * torch.randn(6, generator=gen, dtype=DT))

    def energy(self, x, act, norm):
        return (self.v * torch.tanh(act(norm(x @ self.w)))).sum()


def _force_loss_hvp(model, act, norm, x0, vec):
    """(loss, gradient, H vec) of E + |F|^2 + sum F^3 in the parameters, F = -dE/dx."""
    x = x0.clone().requires_grad_(True)
    energy = model.energy(x, act, norm)
    (forces,) = torch.autograd.grad(-energy, x, create_graph=True)
    loss = energy + (forces**2).sum() + (forces**3).sum()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, create_graph=True, materialize_grads=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vec, strict=True))
    hvp = torch.autograd.grad(dot, params, materialize_grads=True)
    return [loss.detach(), forces.detach(), *[g.detach() for g in grads], *hvp]


CASES = {
    "silu": (higher_order.silu, _silu_primitive, "identity"),
    "sigmoid": (higher_order.sigmoid, torch.sigmoid, "identity"),
    "layer_norm": (torch.tanh, torch.tanh, "norm"),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_primitive_ops_to_the_third_order(case):
    model = _Toy()
    ours_act, ref_act, which = CASES[case]
    if which == "norm":
        ours_norm, ref_norm = (lambda h: higher_order.layer_norm(h, model.norm)), (lambda h: _layer_norm_primitive(h, model.norm))
    else:
        ours_norm = ref_norm = lambda h: h
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(5, 3, generator=gen, dtype=DT)
    vec = [torch.randn(p.shape, generator=gen, dtype=DT) for p in model.parameters()]
    ours = _force_loss_hvp(model, ours_act, ours_norm, x0, vec)
    ref = _force_loss_hvp(model, ref_act, ref_norm, x0, vec)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_layer_norm_third_derivative_matches_finite_differences():
    """The contraction of N's fourth-order tensor (`third`) against central differences of `second`."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, 7, generator=gen, dtype=DT)
    z, u, g = (torch.randn(4, 7, generator=gen, dtype=DT) for _ in range(3))

    def second(xx):
        st = higher_order._Norm(xx, 1e-5)
        return st.second(st.parts(u), st.parts(g))

    st = higher_order._Norm(x, 1e-5)
    pz, pu, pg = st.parts(z), st.parts(u), st.parts(g)
    c = [(a[0] * b[0]).sum(-1, keepdim=True) for a, b in ((pz, pu), (pz, pg), (pu, pg))]
    eps, fd = 1e-6, torch.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            e = torch.zeros_like(x)
            e[i, j] = eps
            fd[i, j] = ((second(x + e) - second(x - e)) * z).sum() / (2 * eps)
    torch.testing.assert_close(st.third(pz, pu, pg, *c), fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("fn", ["silu", "sigmoid", "layer_norm"])
def test_a_fourth_derivative_is_refused(fn):
    x = torch.randn(3, 4, dtype=DT, requires_grad=True)
    f = {"silu": higher_order.silu, "sigmoid": higher_order.sigmoid,
         "layer_norm": lambda h: higher_order.layer_norm(h, nn.LayerNorm(4, dtype=DT))}[fn]
    d = f(x).pow(2)
    with pytest.raises(NotImplementedError, match="third order"):
        for _ in range(4):
            (d,) = torch.autograd.grad(d.sum(), x, create_graph=True)
            d = d.pow(2)


def test_off_by_default_and_scoped():
    assert not higher_order.active()
    with higher_order.enabled():
        assert higher_order.active()
    assert not higher_order.active()
