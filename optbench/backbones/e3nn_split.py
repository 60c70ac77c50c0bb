"""e3nn's tensor products read their per-edge weights as column blocks `w[:, a:b]`, one a path.

Autograd's backward of each such slice allocates zeros the size of all of `w`, copies the block's
gradient into them, and the blocks' gradients are then added up: for SevenNet-0 on 32 small
molecules, about nine zero-fills and additions of a (2304 edges x 960) tensor a layer, some 17% of
a forward and backward. `split_column_slices` rewrites e3nn's generated code so that disjoint
column slices of one tensor come from one `torch.split`, whose backward concatenates the blocks'
gradients. Each element's gradient is the same number (one block's, where the slices added exact
zeros), so energies, forces, stresses and the training gradients are unchanged bit for bit
(tests/backbones/test_e3nn_split.py); only the memory traffic goes.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn


def _column_slice(node: fx.Node) -> tuple[fx.Node, int, int] | None:
    """(x, a, b) when `node` is `x[:, a:b]` with literal bounds, else None."""
    if node.op != "call_function" or node.target is not operator.getitem:
        return None
    src, index = node.args
    if not isinstance(src, fx.Node) or not isinstance(index, tuple) or len(index) != 2:
        return None
    rows, cols = index
    if rows != slice(None) or not isinstance(cols, slice) or cols.step not in (None, 1):
        return None
    start = 0 if cols.start is None else cols.start
    if not isinstance(start, int) or not isinstance(cols.stop, int) or not 0 <= start < cols.stop:
        return None
    return src, start, cols.stop


def _disjoint(bounds: list[tuple[int, int]]) -> bool:
    ordered = sorted(set(bounds))
    return all(b <= c for (_, b), (c, _) in zip(ordered, ordered[1:]))


def _width(src: fx.Node) -> int | None:
    """The size of dimension 1 of `src` where the code states it: `t.reshape(n, width, ...)`, e3nn's way."""
    if src.op == "call_method" and src.target == "reshape" and len(src.args) >= 3 and isinstance(src.args[2], int):
        return src.args[2] if src.args[2] > 0 else None
    return None


def split_graph(gm: fx.GraphModule) -> bool:
    """Rewrite `gm` in place: the disjoint column slices of each tensor of known width from one
    `torch.split` (a piece each slice, and one each gap). True if anything changed."""
    groups: dict[fx.Node, list[tuple[fx.Node, int, int]]] = {}
    for node in gm.graph.nodes:
        found = _column_slice(node)
        if found is not None:
            groups.setdefault(found[0], []).append((node, found[1], found[2]))
    changed = False
    for src, slices in groups.items():
        width = _width(src)
        bounds = [(a, b) for _, a, b in slices]
        if len(slices) < 2 or width is None or max(b for _, b in bounds) > width or not _disjoint(bounds):
            continue
        cuts = sorted({0, width, *(a for a, _ in bounds), *(b for _, b in bounds)})
        at = {p: i for i, p in enumerate(cuts[:-1])}
        with gm.graph.inserting_after(src):
            split = gm.graph.call_function(torch.split, (src, [q - p for p, q in zip(cuts, cuts[1:])]), {"dim": 1})
        for node, a, _ in slices:
            with gm.graph.inserting_after(node):
                piece = gm.graph.call_function(operator.getitem, (split, at[a]))
            node.replace_all_uses_with(piece)
            gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()
    return changed


def split_column_slices(model: nn.Module) -> int:
    """Apply `split_graph` to the generated code (fx graph modules) of every e3nn module of `model`;
    the number of graph modules rewritten. TorchScript-compiled code is left as it is."""
    n = 0
    for module in model.modules():
        for name in getattr(module, "__codegen__", ()):
            gm = getattr(module, name, None)
            if isinstance(gm, fx.GraphModule) and split_graph(gm):
                n += 1
    return n
