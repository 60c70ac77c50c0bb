"""CHGNet's forward pass, same parameters and same numbers, with less arithmetic.

Two exact rewrites of `CHGNet.forward` (the model, its weights and its file format are untouched):

1. The batch is assembled with one vectorised pass (positions, bond vectors, bases for all
   structures at once) instead of a Python loop of small ops per structure, and forces and
   stress come from one `autograd.grad` call instead of two.
2. "Project, then gather": every gated MLP of CHGNet starts with a Linear layer applied to a
   concatenation of gathered rows, e.g. for each angle `[bond_i, bond_j, angle, atom]`. A
   Linear layer of a concatenation is the sum of Linear layers of its pieces, so each piece is
   projected once per *source row* (per atom, per bond) and the projections are gathered. On
   three-body terms (angles outnumber bonds ~10:1) this removes most of the multiply-adds, in
   the forward pass and, more so, in the double backward that force training pays.

Outputs agree with `CHGNet.forward` to float32 rounding (tests/backbones/test_chgnet_fast.py).
`supports(model)` says whether a model's configuration is one this path covers; otherwise the
adapter calls CHGNet's own forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from optbench.backbones import higher_order
from optbench.backbones.base import Prediction


def _first_linear(mlp: nn.Module) -> tuple[nn.Linear, list[nn.Module]] | None:
    """(first Linear of an MLP, the modules after it), or None when the MLP has another shape."""
    layers = list(mlp.layers)
    for k, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            if any(not _is_noop(m) for m in layers[:k]):
                return None
            return layer, layers[k + 1 :]
    return None


def _is_noop(module: nn.Module) -> bool:
    return isinstance(module, nn.Identity) or (isinstance(module, nn.Dropout) and module.p == 0)


def supports(model: nn.Module) -> bool:
    """Whether `predict` reproduces this model's forward exactly."""
    try:
        from chgnet.model.layers import AngleUpdate, AtomConv, BondConv, GraphPooling
    except ImportError:  # pragma: no cover - chgnet is a core dependency
        return False
    if not getattr(model, "mlp_first", False) or not isinstance(model.pooling, GraphPooling):
        return False
    if model.pooling.average:
        return False
    layers = list(model.atom_conv_layers) + [m for m in model.bond_conv_layers if m is not None]
    layers += [m for m in model.angle_layers if m is not None]
    kinds = (AtomConv, BondConv, AngleUpdate)
    for layer in layers:
        if type(layer) not in kinds:
            return False
        gmlp = layer.twoBody_atom if isinstance(layer, AtomConv) else layer.twoBody_bond
        for mlp in (gmlp.mlp_core, gmlp.mlp_gate):
            split = _first_linear(mlp)
            if split is None or any(isinstance(m, nn.Dropout) and m.p > 0 for m in split[1]):
                return False
        if (gmlp.bn1 is None) != (gmlp.norm is None):
            return False
    return True


class _Batch:
    """Index tensors and geometry of a batch of CrystalGraphs, built in one vectorised pass."""

    def __init__(self, graphs: Sequence, *, stress: bool):
        n_atoms = [int(g.atomic_number.shape[0]) for g in graphs]
        atom_graphs = [g.atom_graph.reshape(-1, 2) for g in graphs]
        n_dir = [int(a.shape[0]) for a in atom_graphs]
        n_und = [int(g.undirected2directed.shape[0]) for g in graphs]
        a_off, d_off, u_off = _offsets(n_atoms), _offsets(n_dir), _offsets(n_und)
        b, dev = len(graphs), graphs[0].atomic_number.device
        # Index tensors built from host integers are made on the host and copied without waiting
        # for the device (on CUDA, torch.tensor(..., device=) and repeat_interleave by a device
        # tensor each synchronise); on the CPU the copies are no-ops and the numbers the same.
        n_atoms_host = torch.tensor(n_atoms)
        self.n_atoms = _to(n_atoms_host, dev)
        self.owner = _to(torch.repeat_interleave(torch.arange(b), n_atoms_host), dev)
        edge_owner = _to(torch.repeat_interleave(torch.arange(b), torch.tensor(n_dir)), dev)
        self.numbers = torch.cat([g.atomic_number for g in graphs])
        self.atom_graph = torch.cat([a + a_off[i] for i, a in enumerate(atom_graphs)])
        self.u2d = torch.cat([g.undirected2directed + d_off[i] for i, g in enumerate(graphs)])
        self.d2u = torch.cat([g.directed2undirected + u_off[i] for i, g in enumerate(graphs)])
        offs = _to(torch.tensor([a_off, u_off, d_off, u_off, d_off]).T, dev)
        bond_graphs = [g.bond_graph.reshape(-1, 5) for g in graphs]
        # columns: center atom, undirected bond i, directed bond i, undirected bond j, directed bond j
        self.bond_graph = torch.cat([bg + offs[i] for i, bg in enumerate(bond_graphs)])

        frac = torch.cat([g.atom_frac_coord for g in graphs]).detach()
        lattice = torch.stack([g.lattice for g in graphs]).detach()
        self.volumes = torch.linalg.det(lattice).abs()
        if stress:
            self.strain = lattice.new_zeros((b, 3, 3), requires_grad=True)
            lattice = lattice @ (torch.eye(3, dtype=lattice.dtype, device=dev) + self.strain)
            self.positions = torch.bmm(frac.unsqueeze(1), lattice[self.owner]).squeeze(1)
        else:
            self.strain = None
            self.positions = torch.bmm(frac.unsqueeze(1), lattice[self.owner]).squeeze(1).requires_grad_(True)
        image = torch.cat([g.neighbor_image for g in graphs])
        self.shift = torch.bmm(image.unsqueeze(1), lattice[edge_owner]).squeeze(1)


def _to(t: Tensor, device: torch.device) -> Tensor:
    """A host tensor on `device`, copied without a stream synchronisation (no-op on the CPU)."""
    return t if t.device == device else t.to(device, non_blocking=True)


def _offsets(counts: list[int]) -> list[int]:
    out, total = [], 0
    for c in counts:
        out.append(total)
        total += c
    return out


def _gated(gmlp: nn.Module, pieces: list[tuple[Tensor, Tensor | None]]) -> Tensor:
    """GatedMLP(cat([src[idx] for src, idx in pieces], 1)), each piece projected before gathering.

    Core and gate share one matmul per source tensor (pieces of the same source, e.g. bond i and
    bond j, share it too); the projections are then gathered and summed.
    """
    core_lin, core_rest = _first_linear(gmlp.mlp_core)
    gate_lin, gate_rest = _first_linear(gmlp.mlp_gate)
    weight = torch.cat([core_lin.weight, gate_lin.weight], 0)  # (2 * hidden, sum of piece dims)
    columns, start = [], 0
    for src, _ in pieces:
        columns.append(weight[:, start : start + src.shape[1]])
        start += src.shape[1]
    groups: dict[int, list[int]] = {}
    for k, (src, _) in enumerate(pieces):
        groups.setdefault(id(src), []).append(k)
    h, owned = None, False  # owned: h is a tensor made here that nothing else holds (add in place)
    for ks in groups.values():
        src = pieces[ks[0]][0]
        projs = (src @ torch.cat([columns[k] for k in ks], 0).T).split(weight.shape[0], dim=1)
        for k, proj in zip(ks, projs, strict=True):
            idx = pieces[k][1]
            proj = proj if idx is None else proj.index_select(0, idx)
            if h is None:
                h, owned = proj, idx is not None
            else:
                h, owned = (h.add_(proj) if owned else h + proj), True
    if core_lin.bias is not None:
        bias = torch.cat([core_lin.bias, gate_lin.bias])
        h = h.add_(bias) if owned else h + bias
    hidden = core_lin.out_features
    core, gate = h.split(hidden, dim=1)  # backward: one cat (slices: two zero fills and an add)
    for m in core_rest:
        core = _layer(m, core)
    for m in gate_rest:
        gate = _layer(m, gate)
    if gmlp.norm is not None:
        core, gate = _layer(gmlp.bn1, core), _layer(gmlp.bn2, gate)
    return _layer(gmlp.activation, core) * _layer(gmlp.sigmoid, gate)


def _layer(m: nn.Module, x: Tensor) -> Tensor:
    """m(x); inside `higher_order.enabled()`, SiLU, sigmoid and layer norm with closed-form higher derivatives."""
    if higher_order.active():
        if type(m) is nn.SiLU:
            return higher_order.silu(x)
        if type(m) is nn.Sigmoid:
            return higher_order.sigmoid(x)
        if type(m) is nn.LayerNorm and len(m.normalized_shape) == 1:
            return higher_order.layer_norm(x, m)
    return m(x)


def _sum_into(rows: Tensor, owners: Tensor, n: int) -> Tensor:
    return rows.new_zeros((n, rows.shape[1])).index_add_(0, owners, rows)


def _atom_conv(layer, atom_feas, bond_feas, bond_weights, g: _Batch) -> Tensor:
    center, nbr = g.atom_graph[:, 0], g.atom_graph[:, 1]
    messages = _gated(layer.twoBody_atom, [(atom_feas, center), (bond_feas, g.d2u), (atom_feas, nbr)])
    messages = messages * bond_weights.index_select(0, g.d2u)
    new = _sum_into(messages, center, len(atom_feas))
    if layer.use_mlp_out:
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + atom_feas
    return new if layer.atom_norm is None else _layer(layer.atom_norm, new)


def _angle_pieces(atom_feas, bond_feas, angle_feas, bg: Tensor):
    return [(bond_feas, bg[:, 1]), (bond_feas, bg[:, 3]), (angle_feas, None), (atom_feas, bg[:, 0])]


def _bond_conv(layer, atom_feas, bond_feas, bond_weights, angle_feas, g: _Batch) -> Tensor:
    bg = g.bond_graph
    update = _gated(layer.twoBody_bond, _angle_pieces(atom_feas, bond_feas, angle_feas, bg))
    update = update * bond_weights.index_select(0, bg[:, 1]) * bond_weights.index_select(0, bg[:, 3])
    new = _sum_into(update, bg[:, 1], len(bond_feas))
    if layer.use_mlp_out:
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + bond_feas
    return new if layer.bond_norm is None else _layer(layer.bond_norm, new)


def _angle_update(layer, atom_feas, bond_feas, angle_feas, g: _Batch) -> Tensor:
    new = _gated(layer.twoBody_bond, _angle_pieces(atom_feas, bond_feas, angle_feas, g.bond_graph))
    if layer.resnet:
        new = new + angle_feas
    return new if layer.angle_norm is None else _layer(layer.angle_norm, new)


def _composition_energy(comp_model: nn.Module, graphs: Sequence, g: _Batch) -> Tensor:
    """`comp_model(graphs)`; for CHGNet's AtomRef, its element counts in one scatter for the batch
    instead of a bincount per structure (each of which waits for the device on CUDA).

    Same numbers: the counts are small integers (exact in float32), divided by the atom count in
    float32 as AtomRef's int64 / int does, then its Linear layer on the same (B, elements) matrix.
    """
    from chgnet.model.composition_model import AtomRef

    if type(comp_model) is not AtomRef or not comp_model.fitted:
        return comp_model(list(graphs))
    counts = g.numbers.new_zeros((len(graphs), comp_model.max_num_elements), dtype=torch.float32)
    counts.index_put_((g.owner, g.numbers - 1), counts.new_ones(()).expand(len(g.numbers)), accumulate=True)
    if comp_model.is_intensive:
        counts = counts / g.n_atoms[:, None]
    return comp_model._get_energy(counts)


def _keeps_statistics(layer: nn.Module) -> bool:
    """Whether a forward of `layer` changes its state (batch norm statistics in train mode).

    The last angle update of CHGNet feeds nothing (no bond layer follows it): its output never
    reaches the energy, so `predict` skips it unless running it has this side effect.
    """
    return layer.training and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in layer.modules())


def predict(model, graphs: Sequence, *, stress: bool = False, create_graph: bool = True) -> Prediction:
    """Energy (B,) eV, forces (N, 3) eV/Å and, with `stress`, stress (B, 3, 3) eV/Å^3 (ASE sign)."""
    energy, g = energy_of(model, graphs, stress=stress)
    inputs = [g.positions, g.strain] if stress else [g.positions]
    grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph)
    s = grads[1] / g.volumes[:, None, None] if stress else None
    return Prediction(energy=energy, forces=-grads[0], stress=s, n_atoms=g.n_atoms)


def energy_of(model, graphs: Sequence, *, stress: bool = False) -> tuple[Tensor, _Batch]:
    """(energy (B,) eV, the batch whose positions and strain it was computed from): the forward."""
    g = _Batch(graphs, stress=stress)
    vec = g.positions[g.atom_graph[:, 0]] - (g.positions[g.atom_graph[:, 1]] + g.shift)
    length = torch.linalg.vector_norm(vec, dim=1)
    unit = vec / length[:, None]
    und = length.index_select(0, g.u2d)
    enc = model.bond_basis_expansion
    bases_ag, bases_bg = enc.rbf_expansion_ag(und), enc.rbf_expansion_bg(und)
    has_angles = len(g.bond_graph) > 0

    atom_feas = model.atom_embedding(g.numbers - 1)
    bond_feas = model.bond_embedding(bases_ag)
    weights_ag = model.bond_weights_ag(bases_ag)
    weights_bg = model.bond_weights_bg(bases_bg)
    if has_angles:
        bg = g.bond_graph
        angle_feas = model.angle_embedding(
            model.angle_basis_expansion(unit.index_select(0, bg[:, 2]), unit.index_select(0, bg[:, 4])))
    blocks = list(zip(model.atom_conv_layers[:-1], model.bond_conv_layers, model.angle_layers, strict=False))
    for k, (atom_layer, bond_layer, angle_layer) in enumerate(blocks):
        atom_feas = _atom_conv(atom_layer, atom_feas, bond_feas, weights_ag, g)
        if has_angles and bond_layer is not None:
            bond_feas = _bond_conv(bond_layer, atom_feas, bond_feas, weights_bg, angle_feas, g)
            if angle_layer is not None and (k < len(blocks) - 1 or _keeps_statistics(angle_layer)):
                angle_feas = _angle_update(angle_layer, atom_feas, bond_feas, angle_feas, g)
    atom_feas = _atom_conv(model.atom_conv_layers[-1], atom_feas, bond_feas, weights_ag, g)
    if model.readout_norm is not None:
        atom_feas = _layer(model.readout_norm, atom_feas)
    site = atom_feas
    readout = getattr(model.mlp, "layers", model.mlp)
    for m in readout if isinstance(readout, nn.Sequential) else [readout]:
        site = _layer(m, site)
    # total eV: GraphPooling's sum (`aggregate`) without its bincount, which waits for the device
    energy = _sum_into(site, g.owner, len(g.n_atoms)).view(-1)
    if model.composition_model is not None:
        comp = _composition_energy(model.composition_model, graphs, g)  # eV/atom when the model is intensive
        energy = energy + (comp * g.n_atoms if model.is_intensive else comp)
    return energy, g
