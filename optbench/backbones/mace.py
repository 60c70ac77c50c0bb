"""MACE adapter: a local model file (`mace:PATH`) or MACE-MP downloaded into a cache (`mace-mp-small`).

Multi-head models take their head after an `@`: `mace:PATH@HEAD` (default: the only head, or 'Default').
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import torch
from ase import Atoms

from optbench.backbones.base import Backbone, Prediction, split_suffix
from optbench.backbones.e3nn_split import split_column_slices
from optbench.errors import InputError

MODEL_FILE = "mace.model"
_PROBE = ("github.com", 443)  # where MACE-MP files are released; probed before a download


class MACEBackbone(Backbone):
    """A MACE model (`torch.save`d module); energy eV, forces eV/Å, stress eV/Å^3 (ASE sign)."""

    name = "mace"
    GROUPS = (
        ("embedding", ("node_embedding.*",)),
        ("radial", ("radial_embedding.*", "interactions.*.conv_tp_weights.*")),  # basis and radial MLPs
        ("interaction", ("interactions.*", "products.*")),  # message passing and symmetric contractions
        ("readout", ("readouts.*",)),
        ("reference", ("atomic_energies_fn.*", "scale_shift.*")),
    )

    def __init__(self, model, device: str = "cpu", source: str = "", head: str | None = None):
        super().__init__(model, device, source)
        from mace.tools import AtomicNumberTable

        self.r_max = float(model.r_max)
        self.z_table = AtomicNumberTable([int(z) for z in model.atomic_numbers])
        self.heads = list(getattr(model, "heads", None) or ["Default"])
        self.head = head or getattr(model, "optbench_head", None) or _default_head(self.heads)
        model.optbench_head = self.head  # kept in the saved file, so a reloaded model keeps its head
        self.dtype = next(model.parameters()).dtype
        split_column_slices(model)  # e3nn's weight slices from one split: the same numbers, less memory traffic

    def featurize(self, atoms: Atoms):
        from mace import data
        from mace.tools import torch_tools

        with torch_tools.default_dtype(self.dtype):
            config = data.config_from_atoms(atoms, head_name=self.head)
            graph = data.AtomicData.from_config(config, z_table=self.z_table, cutoff=self.r_max, heads=self.heads)
        return graph.to(self.device)

    def predict(self, graphs: Sequence, *, stress: bool = False, create_graph: bool = True) -> Prediction:
        from mace.tools import torch_geometric

        # MACE's collate; a fresh batch each call since the model sets requires_grad on its positions.
        batch = torch_geometric.Batch.from_data_list(list(graphs)).to_dict()
        # MACE's `training` argument only decides create_graph for forces and stress.
        out = self.model(batch, training=create_graph, compute_force=True, compute_stress=stress)
        n_atoms = batch["ptr"][1:] - batch["ptr"][:-1]
        s = out["stress"] if stress else None  # already -virial/V: ASE sign, eV/Å^3
        return Prediction(energy=out["energy"], forces=out["forces"], stress=s, n_atoms=n_atoms)

    def predict_energy(self, graphs: Sequence) -> torch.Tensor:
        from mace.tools import torch_geometric

        batch = torch_geometric.Batch.from_data_list(list(graphs)).to_dict()
        return self.model(batch, training=False, compute_force=False, compute_stress=False)["energy"].detach()

    def supported_numbers(self) -> set[int]:
        return set(self.z_table.zs)

    def shift_reference_energies(self, shifts: dict[int, float]) -> None:
        e0 = self.model.atomic_energies_fn.atomic_energies  # (heads, elements) or (elements,)
        with torch.no_grad():
            for z, delta in shifts.items():
                idx = self.z_table.z_to_index(int(z))
                if e0.ndim == 2:
                    e0[self.heads.index(self.head), idx] += float(delta)
                else:
                    e0[idx] += float(delta)

    def reference_energies(self, numbers) -> dict[int, float]:
        e0 = self.model.atomic_energies_fn.atomic_energies
        row = e0[self.heads.index(self.head)] if e0.ndim == 2 else e0
        return {int(z): float(row[self.z_table.z_to_index(int(z))]) for z in numbers}

    def save_native(self, directory: Path) -> str:
        """The whole module, as MACE saves it: `MACECalculator(model_paths=path)` loads it."""
        from optbench.io import torch_save

        torch_save(directory / MODEL_FILE, self.model)
        return MODEL_FILE


def _default_head(heads: list[str]) -> str:
    if len(heads) == 1:
        return heads[0]
    for h in heads:
        if h.lower() == "default":
            return h
    raise InputError(f"multi-head MACE model: choose a head with 'mace:PATH@HEAD' ({', '.join(heads)})", field="model")


def _online(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(_PROBE, timeout=timeout).close()
        return True
    except OSError:
        return False


def _mace_mp_file(spec: str) -> str:
    """Local file of `mace-mp-SIZE`: the cached copy, else a download into MACE's cache."""
    from mace.calculators.foundations_models import download_mace_mp_checkpoint, mace_mp_urls
    from mace.tools.utils import get_cache_dir

    size = spec.removeprefix("mace-mp-")
    if size not in mace_mp_urls:
        raise InputError(f"unknown MACE-MP model '{spec}' (known: {', '.join('mace-mp-' + k for k in mace_mp_urls)})", field="model")
    url_name = "".join(c for c in os.path.basename(mace_mp_urls[size]) if c.isalnum() or c == "_")
    cached = Path(get_cache_dir()) / url_name
    if cached.is_file():
        return str(cached)
    if not _online():
        raise InputError(f"'{spec}' must be downloaded but there is no network; download it elsewhere and pass --model mace:PATH", field="model")
    try:
        return download_mace_mp_checkpoint(size)
    except Exception as err:
        raise InputError(f"download of '{spec}' failed ({err}); pass a local file with --model mace:PATH", field="model") from None


def load_model_file(path: str | Path, device: str = "cpu") -> torch.nn.Module:
    """A MACE model saved with torch.save (the `.model` files MACE writes)."""
    import mace  # noqa: F401  (registers MACE's classes for unpickling)

    path = Path(path)
    if not path.is_file():
        raise InputError("MACE model file not found", file=path, field="model")
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:
        raise InputError(f"not a MACE model file ({err})", file=path, field="model") from None
    if not (isinstance(model, torch.nn.Module) and hasattr(model, "atomic_numbers") and hasattr(model, "r_max")):
        raise InputError("not a MACE model (a torch.save'd MACE module is expected)", file=path, field="model")
    return model


def load(rest: str, device: str = "cpu") -> MACEBackbone:
    """`rest` is a model file path or `mace-mp-SIZE`, optionally `@HEAD`."""
    spec, head = split_suffix(rest)
    if not spec:
        raise InputError("MACE needs a model: --model mace:PATH or mace-mp-small|medium", field="model")
    path = _mace_mp_file(spec) if spec.startswith("mace-mp-") and not Path(spec).exists() else spec
    model = load_model_file(path, device)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    bb = MACEBackbone(model, device=device, source=rest if spec.startswith("mace-mp-") else f"mace:{rest}", head=head or None)
    if head and head not in bb.heads:
        raise InputError(f"MACE model has no head '{head}' ({', '.join(bb.heads)})", field="model")
    return bb
