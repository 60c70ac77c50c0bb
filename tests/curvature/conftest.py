import pytest
import torch

from optbench.data.io import read_frames
from optbench.loss import FeaturizedSet, LossWeights, compute_loss

from .toy import ETHANOL, ToyBackbone


@pytest.fixture(scope="session")
def ethanol_frames():
    return read_frames(ETHANOL, index=":6")


@pytest.fixture
def toy(ethanol_frames):
    """(backbone, featurized set of 4 ethanol frames, weights) for the toy pair potential."""
    bb = ToyBackbone()
    fs = FeaturizedSet(ethanol_frames[:4], bb)
    return bb, fs, LossWeights(energy=1.0, forces=10.0, stress=0.0)


def flat_loss(bb, fs, weights):
    """Loss as a function of the flat vector of the parameters that get a gradient (dense tests)."""
    params = [p for n, p in bb.named_parameters() if not n.startswith("unused")]
    names = [n for n, p in bb.named_parameters() if not n.startswith("unused")]
    shapes = [p.shape for p in params]
    batch = fs.batch(range(len(fs)))

    def f(flat):
        out, start = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(torch.Size(s).numel())
            out[n] = flat[start : start + k].view(s)
            start += k
        bb.params_override = out
        try:
            return compute_loss(bb, batch, weights)[0]
        finally:
            bb.params_override = None

    x0 = torch.cat([p.detach().reshape(-1) for p in params])
    return f, x0


_DENSE = {}


def dense_hessian(bb, fs, weights):
    """Dense Hessian by torch.autograd.functional.hessian (cached per toy configuration)."""
    f, x0 = flat_loss(bb, fs, weights)
    key = (len(fs), tuple(x0.tolist()), weights.energy, weights.forces)
    if key not in _DENSE:
        _DENSE[key] = torch.autograd.functional.hessian(f, x0).detach()
    return _DENSE[key]
