"""SevenNet adapter (pretrained checkpoints such as SevenNet-0 ship inside the `sevenn` wheel).

Specs: `sevennet-0` / `7net-0` (or any other name `sevenn` knows, e.g. `7net-l3i5`), or
`sevennet:PATH` for a SevenNet checkpoint file. Multi-fidelity models take their modal after
an `@`: `7net-mf-0@PBE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from ase import Atoms

from optbench.backbones.base import Backbone, Prediction, split_suffix
from optbench.backbones.e3nn_split import split_column_slices
from optbench.errors import InputError

CHECKPOINT_FILE = "checkpoint_sevennet.pth"
_MODAL_KEY = "optbench_modal"


def _voigt_to_3x3(v: torch.Tensor) -> torch.Tensor:
    """SevenNet's (B, 6) order xx, yy, zz, xy, yz, zx -> (B, 3, 3)."""
    xx, yy, zz, xy, yz, zx = v.unbind(-1)
    rows = [torch.stack([xx, xy, zx], -1), torch.stack([xy, yy, yz], -1), torch.stack([zx, yz, zz], -1)]
    return torch.stack(rows, -2)


class SevenNetBackbone(Backbone):
    """SevenNet's AtomGraphSequential; energy eV, forces eV/Å, stress eV/Å^3 (ASE sign)."""

    name = "sevennet"
    GROUPS = (
        ("embedding", ("onehot_to_feature_x.*",)),
        ("radial", ("edge_embedding.*", "[0-9]*_convolution.weight_nn.*")),  # basis and radial MLPs
        ("interaction", ("[0-9]*_*",)),  # the rest of each numbered layer
        ("readout", ("reduce_input_to_hidden.*", "reduce_hidden_to_energy.*")),
        ("reference", ("rescale_atomic_energy.*",)),
    )

    def __init__(self, model, config: dict, device: str = "cpu", source: str = "", modal: str | None = None):
        super().__init__(model, device, source)
        import sevenn._keys as KEY

        self.config = config
        self.cutoff = float(config[KEY.CUTOFF])
        self.modal = modal
        model.set_is_batch_data(True)  # predict() always feeds torch_geometric batches
        # SevenNet's force/stress modules keep second derivatives only in train mode (see predict).
        self._force_heads = [m for m in model.modules() if type(m).__module__ == "sevenn.nn.force_output"]
        split_column_slices(model)  # e3nn's weight slices from one split: the same numbers, less memory traffic

    def featurize(self, atoms: Atoms):
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        graph = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self.cutoff))
        if self.modal is not None:
            graph[KEY.DATA_MODALITY] = self.modal
        return graph.to(self.device)

    def predict(self, graphs: Sequence, *, stress: bool = False, create_graph: bool = True) -> Prediction:
        import sevenn._keys as KEY
        from torch_geometric.data import Batch

        # A fresh batch each call: the model writes its outputs (and grad-enabled edge vectors) into it.
        # The force/stress modules' train flag is what decides create_graph: set it for this call.
        modes = [m.training for m in self._force_heads]
        for m in self._force_heads:
            m.training = create_graph
        try:
            out = self.model(Batch.from_data_list(list(graphs)))
        finally:
            for m, mode in zip(self._force_heads, modes, strict=True):
                m.training = mode
        energy = out[KEY.PRED_TOTAL_ENERGY].reshape(-1)
        # SevenNet stores -stress (virial / volume, eV/Å^3); ASE's sign is the opposite.
        s = -_voigt_to_3x3(out[KEY.PRED_STRESS].reshape(-1, 6)) if stress else None
        n_atoms = out[KEY.NUM_ATOMS].reshape(-1)
        return Prediction(energy=energy, forces=out[KEY.PRED_FORCE], stress=s, n_atoms=n_atoms)

    def supported_numbers(self) -> set[int]:
        return {int(z) for z in self.model.type_map}

    def shift_reference_energies(self, shifts: dict[int, float]) -> None:
        # SevenNet's per-element energy shift lives in the rescale module, indexed by type index.
        rescale = self.model._modules["rescale_atomic_energy"]
        shift = rescale.shift
        if shift.ndim == 1 and shift.numel() == 1:
            raise InputError("this SevenNet model has one energy shift for all elements; per-element E0 refit needs a species-wise model", field="e0")
        with torch.no_grad():
            for z, delta in shifts.items():
                idx = self.model.type_map[int(z)]
                if shift.ndim == 2:  # modal-wise (modal, species): shift the modal being fine-tuned
                    shift[self.model.modal_map[self.modal], idx] += float(delta)
                else:
                    shift[idx] += float(delta)

    def reference_energies(self, numbers) -> dict[int, float]:
        shift = self.model._modules["rescale_atomic_energy"].shift
        if shift.ndim == 1 and shift.numel() == 1:
            raise InputError("this SevenNet model has one energy shift for all elements; per-element E0s need a species-wise model", field="e0")
        row = shift[self.model.modal_map[self.modal]] if shift.ndim == 2 else shift
        return {int(z): float(row[self.model.type_map[int(z)]]) for z in numbers}

    def save_native(self, directory: Path) -> str:
        """SevenNet checkpoint (config + state dict): `SevenNetCalculator(path)` and `sevenn` load it."""
        import uuid
        from datetime import datetime

        import sevenn

        from optbench.io import torch_save

        config = dict(self.config)
        config["version"] = sevenn.__version__
        config[_MODAL_KEY] = self.modal  # extra key; sevenn ignores it, load() reads it back
        torch_save(directory / CHECKPOINT_FILE, {
            "config": config,
            "epoch": 0,
            "model_state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer_state_dict": {},
            "scheduler_state_dict": {},
            "time": datetime.now().strftime("%Y-%m-%d %H:%M"),
            "hash": uuid.uuid4().hex,
        })
        return CHECKPOINT_FILE


def _checkpoint_path(name: str) -> str:
    from sevenn.util import get_available_pretrained_models, pretrained_name_to_path

    path = Path(name)
    if path.is_file():
        return str(path)
    try:
        return pretrained_name_to_path(name)
    except ValueError:
        if path.suffix or "/" in name:
            raise InputError("SevenNet checkpoint file not found", file=path, field="model") from None
        known = ", ".join(get_available_pretrained_models())
        raise InputError(f"unknown SevenNet model '{name}' (known: {known}, or a checkpoint path)", field="model") from None
    except Exception as err:  # a pretrained name whose weights are not in the wheel and cannot be downloaded
        raise InputError(f"SevenNet model '{name}' is not available offline ({err}); pass a checkpoint path", field="model") from None


def load(rest: str, device: str = "cpu") -> SevenNetBackbone:
    """`rest` is a pretrained name (`sevennet-0`, `7net-l3i5`, ...) or a checkpoint path, optionally `@modal`."""
    from sevenn.checkpoint import SevenNetCheckpoint

    rest = rest or "sevennet-0"
    name, modal = split_suffix(rest)
    cp = SevenNetCheckpoint(_checkpoint_path(name))
    model = cp.build_model()
    modal = modal or cp.config.get(_MODAL_KEY) or ""
    modal_map = model.modal_map or {}
    if modal_map and modal not in modal_map:
        raise InputError(f"SevenNet model '{name}' needs a modal: '{name}@MODAL' with MODAL one of {', '.join(modal_map)}", field="model")
    if modal and not modal_map:
        raise InputError(f"SevenNet model '{name}' has no modals; drop '@{modal}'", field="model")
    model.eval()
    source = f"sevennet:{rest}" if Path(name).is_file() else rest
    return SevenNetBackbone(model, cp.config, device=device, source=source, modal=modal or None)
