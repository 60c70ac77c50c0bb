"""CHGNet's Hessian-vector product in float64 against central differences of its gradient.

In float64 the comparison is tight enough to see third-derivative errors: torch's fused layer norm
treats its saved mean and 1/std as constants when differentiated a third time (pytorch#175754),
which put 6e-4 relative error into CHGNet's products; the backbone's closed-form derivatives
(`higher_derivatives`) agree with the differences to 1e-9.
"""

import pytest
import torch

from optbench.curvature import build_hvp_operator
from optbench.data.io import read_frames
from optbench.loss import FeaturizedSet, LossWeights

from .toy import ETHANOL, finite_difference_hvp


@pytest.fixture(scope="module")
def chgnet64():
    from optbench.backbones import load_backbone

    bb = load_backbone("chgnet")
    bb.model.double()
    # the composition model builds its features in float32
    bb.model.composition_model.fc.register_forward_pre_hook(lambda m, args: tuple(a.double() for a in args))
    return bb


def test_chgnet_hvp_matches_finite_differences_in_float64(chgnet64):
    fs = FeaturizedSet(read_frames(ETHANOL, index=":2"), chgnet64)
    for graph in fs.graphs:
        for key, value in list(vars(graph).items()):
            if torch.is_tensor(value) and value.is_floating_point():
                setattr(graph, key, value.double())
    w = LossWeights()
    op = build_hvp_operator(chgnet64, fs, w)
    v = torch.randn(op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hv = op(v)
    fd = finite_difference_hvp(chgnet64, fs, w, op, v, eps=1e-4 / float(v.norm()))
    assert float((hv - fd).norm() / fd.norm()) < 1e-7
