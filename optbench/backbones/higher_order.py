"""SiLU, sigmoid and layer normalisation with closed-form derivatives up to the third order.

The curvature of a force-matching loss is a third derivative of the model: forces are one
backward pass, the loss gradient a second, a Hessian-vector product a third. Autograd's own
derivatives of `silu_backward`, `sigmoid_backward` and `native_layer_norm_backward` are composite
formulas (a dozen elementwise ops each), and the product differentiates those once more, op by
op: most of its time. Here each derivative level is one `autograd.Function` whose backward is the
next level, written with few ops on quantities computed once per input:

- elementwise f (SiLU, sigmoid): level k is `prod(factors) * f^(k)(x)`; its derivative in a
  factor is the same level with that factor replaced, in x the next level;
- normalisation n = N(x) (layer norm before its affine map): the Jacobian
  J = r (I - 1 1^T / D - n n^T / D) is symmetric and N's higher derivatives are fully
  symmetric tensors, so level 1 is J g, level 2 the gradient of u^T J g (symmetric in u, g)
  and level 3 the gradient of z^T L2(u, g).

Values equal autograd's on the same functions written with primitive ops, at float rounding
(tests/backbones/test_higher_order.py). Torch's fused layer norm is not right at the third order:
its double backward uses the saved mean and 1/std, which autograd then treats as constants
(pytorch#175754); in CHGNet that put a relative error of 6e-4 into each Hessian-vector product
(tests/curvature/test_chgnet_float64.py). A fourth derivative is not provided: asking for one
raises. `enabled()` switches the forward passes that support it (`chgnet_fast`) to these
functions; training and inference do not use them.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
from torch import Tensor
from torch.autograd import Function

_ON = contextvars.ContextVar("optbench_higher_order", default=False)


@contextlib.contextmanager
def enabled():
    """Within the block, supporting forward passes use the functions of this module."""
    token = _ON.set(True)
    try:
        yield
    finally:
        _ON.reset(token)


def active() -> bool:
    return _ON.get()


def _no_fourth() -> None:
    raise NotImplementedError("optbench.backbones.higher_order provides derivatives up to the third order")


# ---------------------------------------------------------------- elementwise functions
class _Derivatives:
    """f^(k)(x) for k = 1..3 of f = silu or sigmoid, from sigmoid(x), computed on first use."""

    def __init__(self, x: Tensor, silu: bool):
        self.x, self.silu = x.detach(), silu
        self._cache: dict[int, Tensor] = {}

    def __getitem__(self, k: int) -> Tensor:
        if k not in self._cache:
            if k > 3:
                _no_fourth()
            self._cache.update(self._compute())
        return self._cache[k]

    def _compute(self) -> dict[int, Tensor]:
        x = self.x
        s = torch.sigmoid(x)
        q = s * (1 - s)  # sigmoid'
        t = 1 - 2 * s
        if not self.silu:
            return {1: q, 2: q * t, 3: q * (1 - 6 * q)}
        # silu = x s: silu' = s + x q, silu'' = q (2 + x t), silu''' = q (t (3 + x t) - 2 x q)
        xt = x * t
        return {1: s + x * q, 2: q * (2 + xt), 3: q * (t * (3 + xt) - 2 * x * q)}


class _Scaled(Function):
    """prod(factors) * f^(k)(x): differentiable in each factor (same k) and in x (k + 1)."""

    @staticmethod
    def forward(ctx, k: int, derivs: _Derivatives, x: Tensor, *factors: Tensor) -> Tensor:
        ctx.k, ctx.derivs = k, derivs
        ctx.save_for_backward(x, *factors)
        out = factors[0]
        for f in factors[1:]:
            out = out * f
        return out * derivs[k]

    @staticmethod
    def backward(ctx, z: Tensor):
        x, *factors = ctx.saved_tensors
        k, d, need = ctx.k, ctx.derivs, ctx.needs_input_grad
        grads = [_Scaled.apply(k, d, x, z, *factors[:i], *factors[i + 1 :]) if need[3 + i] else None
                 for i in range(len(factors))]
        gx = _Scaled.apply(k + 1, d, x, z, *factors) if need[2] else None
        return (None, None, gx, *grads)


class _Elementwise(Function):
    @staticmethod
    def forward(ctx, derivs: _Derivatives, x: Tensor) -> Tensor:
        ctx.derivs = derivs
        ctx.save_for_backward(x)
        return torch.nn.functional.silu(x) if derivs.silu else torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return None, _Scaled.apply(1, ctx.derivs, x, g)


def silu(x: Tensor) -> Tensor:
    return _Elementwise.apply(_Derivatives(x, True), x)


def sigmoid(x: Tensor) -> Tensor:
    return _Elementwise.apply(_Derivatives(x, False), x)


# ---------------------------------------------------------------- layer normalisation
# Per row of D features: n = N(x) = (x - mean x) r, r = 1 / sqrt(var x + eps). With a_c = a - mean a,
# n_a = n.a and c_ab = a_c.b_c (row scalars), the derivatives of N are
#   J a             = r (a_c - n n_a / D)                                         (J symmetric)
#   L2(a, b)        = grad_x (a^T J b) = -(r^2 / D) (n (c_ab - 3 n_a n_b / D) + n_b a_c + n_a b_c)
#   L3(z, u, g)     = grad_x (z^T L2(u, g))
#                   = -(r^3 / D) ((c_ug - 3 n_u n_g / D) z_c + (c_zg - 3 n_z n_g / D) u_c
#                                 + (c_zu - 3 n_z n_u / D) g_c - (3 S - 15 n_z n_u n_g / D) n / D),
#     S = n_z c_ug + n_u c_zg + n_g c_zu;
# the third derivative tensor is fully symmetric, so the derivative of z^T L2(u, g) in u is L2(z, g).
class _Norm:
    """n = N(x) and r of one layer norm's input, and N's derivatives (formulas above)."""

    def __init__(self, x: Tensor, eps: float):
        self.dim = x.shape[-1]
        n, _, r = torch.native_layer_norm(x.detach(), [self.dim], None, None, eps)
        self.n, self.r = n, r

    def parts(self, a: Tensor) -> tuple[Tensor, Tensor]:
        """(a_c, n_a)."""
        return a - a.mean(-1, keepdim=True), (self.n * a).sum(-1, keepdim=True)

    def first(self, a) -> Tensor:
        ac, na = a
        return self.r * torch.addcmul(ac, self.n, na, value=-1 / self.dim)

    def second(self, a, b, cab: Tensor | None = None) -> Tensor:
        (ac, na), (bc, nb) = a, b
        cab = (ac * bc).sum(-1, keepdim=True) if cab is None else cab
        out = torch.addcmul(torch.addcmul(nb * ac, na, bc), self.n, cab - na * nb * (3 / self.dim))
        return out * (self.r * self.r * (-1 / self.dim))

    def third(self, z, u, g, czu: Tensor, czg: Tensor, cug: Tensor) -> Tensor:
        (zc, nz), (uc, nu), (gc, ng) = z, u, g
        k = 3 / self.dim
        s = nz * cug + nu * czg + ng * czu
        out = torch.addcmul((cug - k * nu * ng) * zc, czg - k * nz * ng, uc)
        out = torch.addcmul(torch.addcmul(out, czu - k * nz * nu, gc), self.n, (5 * k * nz * nu * ng - 3 * s) / self.dim)
        return out * (self.r**3 * (-1 / self.dim))


class _NormFirst(Function):
    """J g: N's first derivative applied to g."""

    @staticmethod
    def forward(ctx, st: _Norm, x: Tensor, g: Tensor, pg=None) -> Tensor:
        ctx.st, ctx.pg = st, pg or st.parts(g)
        ctx.save_for_backward(x, g)
        return st.first(ctx.pg)

    @staticmethod
    def backward(ctx, u: Tensor):
        x, g = ctx.saved_tensors
        st, need = ctx.st, ctx.needs_input_grad
        pu = st.parts(u)
        gx = _NormSecond.apply(st, x, u, g, pu, ctx.pg) if need[1] else None
        return None, gx, _NormFirst.apply(st, x, u, pu) if need[2] else None, None


class _NormSecond(Function):
    """L2(u, g) = grad_x (u^T J g)."""

    @staticmethod
    def forward(ctx, st: _Norm, x: Tensor, u: Tensor, g: Tensor, pu, pg, cug=None) -> Tensor:
        ctx.st, ctx.pu, ctx.pg = st, pu, pg
        ctx.save_for_backward(x, u, g)
        ctx.cug = (pu[0] * pg[0]).sum(-1, keepdim=True) if cug is None else cug
        return st.second(pu, pg, ctx.cug)

    @staticmethod
    def backward(ctx, z: Tensor):
        x, u, g = ctx.saved_tensors
        st, need, pu, pg = ctx.st, ctx.needs_input_grad, ctx.pu, ctx.pg
        if need[1] and torch.is_grad_enabled():
            _no_fourth()
        pz = st.parts(z)
        czu, czg = (pz[0] * pu[0]).sum(-1, keepdim=True), (pz[0] * pg[0]).sum(-1, keepdim=True)
        gx = st.third(pz, pu, pg, czu, czg, ctx.cug) if need[1] else None
        gu = _NormSecond.apply(st, x, z, g, pz, pg, czg) if need[2] else None
        gg = _NormSecond.apply(st, x, z, u, pz, pu, czu) if need[3] else None
        return None, gx, gu, gg, None, None, None


class _Normalize(Function):
    @staticmethod
    def forward(ctx, st: _Norm, x: Tensor) -> Tensor:
        ctx.st = st
        ctx.save_for_backward(x)
        return st.n.clone()

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        return None, _NormFirst.apply(ctx.st, x, g)


def layer_norm(x: Tensor, module: torch.nn.LayerNorm) -> Tensor:
    """`module(x)` for a LayerNorm over the last dimension."""
    n = _Normalize.apply(_Norm(x, module.eps), x)
    if module.weight is not None:
        n = n * module.weight
    return n if module.bias is None else n + module.bias
