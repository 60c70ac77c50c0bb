"""The fast CHGNet forward (optbench.backbones.chgnet_fast) against CHGNet's own forward."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from pymatgen.io.ase import AseAtomsAdaptor

from optbench.backbones import chgnet_fast, load_backbone
from optbench.backbones.base import Backbone

GPA = 160.21766208


def _structures():
    """A mixed batch: a boxed molecule and strained/rattled crystals."""
    ethanol = Backbone.as_periodic(molecule("CH3CH2OH"), 6.0)
    si = bulk("Si", "diamond", 5.43, cubic=True)
    si.rattle(0.05, seed=1)
    si.set_cell(si.cell.array @ [[1.01, 0.02, 0], [0, 0.99, 0], [0, 0, 1.0]], scale_atoms=True)
    nacl = bulk("NaCl", "rocksalt", 5.7) * (2, 1, 1)
    nacl.rattle(0.05, seed=2)
    return [ethanol, si, nacl]


def _no_angles():
    """Two atoms 3.5 Å apart: bonds in the atom graph (cutoff 5 Å) but none in the bond graph (3 Å)."""
    return [Atoms("O2", positions=[[0, 0, 0], [3.5, 0, 0]], cell=[13, 13, 13], pbc=True)]


def _graphs(model, structures):
    return [model.graph_converter(AseAtomsAdaptor.get_structure(a)) for a in structures]


def _compare(model, graphs):
    params = [p for p in model.parameters() if p.requires_grad]
    ref = model(graphs, task="efs")
    n = ref["atoms_per_graph"]
    e_ref, f_ref, s_ref = ref["e"] * n, torch.cat(ref["f"]), torch.stack(ref["s"]) / GPA
    pred = chgnet_fast.predict(model, graphs, stress=True)
    e, f, s = pred.energy, pred.forces, pred.stress
    torch.testing.assert_close(pred.n_atoms, n)
    torch.testing.assert_close(e, e_ref, atol=2e-5 * float(n.max()), rtol=1e-5)
    torch.testing.assert_close(f, f_ref, atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=5e-7, rtol=1e-4)

    # The training gradient (double backward through forces and stress) agrees too.
    def grads(e, f, s):
        loss = ((e / n) ** 2).sum() + 10 * (f**2).sum() + 0.1 * ((s * GPA) ** 2).sum()
        return torch.autograd.grad(loss, params, allow_unused=True)

    for a, b in zip(grads(e_ref, f_ref, s_ref), grads(e, f, s), strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert float((a - b).norm()) <= 1e-3 * float(a.norm()) + 1e-7


def test_pretrained_chgnet_fast_path_equals_chgnet_forward():
    backbone = load_backbone("chgnet")
    assert backbone.fast
    _compare(backbone.model, _graphs(backbone.model, _structures()))
    _compare(backbone.model, _graphs(backbone.model, _no_angles()))


def test_fast_path_without_gated_norms_equals_chgnet_forward():
    from chgnet.model import CHGNet

    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = CHGNet(atom_fea_dim=16, bond_fea_dim=16, angle_fea_dim=16, mlp_hidden_dims=[16], gMLP_norm=None)
    assert chgnet_fast.supports(model)
    _compare(model, _graphs(model, _structures()))


@pytest.mark.parametrize("kwargs", [{"mlp_first": False}, {"conv_dropout": 0.1}])
def test_other_configurations_use_chgnet_forward(kwargs):
    from chgnet.model import CHGNet

    from optbench.backbones.chgnet import CHGNetBackbone

    with contextlib.redirect_stdout(io.StringIO()):
        model = CHGNet(atom_fea_dim=16, bond_fea_dim=16, angle_fea_dim=16, mlp_hidden_dims=[16], **kwargs)
    backbone = CHGNetBackbone(model)
    assert not backbone.fast
    model.eval()
    graphs = _graphs(model, _structures()[:2])
    pred = backbone.predict(graphs, stress=True)
    ref = model(graphs, task="efs")
    torch.testing.assert_close(pred.energy, ref["e"] * ref["atoms_per_graph"])
