"""CHGNet adapter (weights ship inside the `chgnet` wheel)."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from ase import Atoms
from ase.units import GPa

from optbench.backbones import chgnet_fast
from optbench.backbones.base import Backbone, Prediction
from optbench.errors import InputError

GPA_PER_EV_A3 = 1 / GPa  # eV/Å^3 -> GPa (exactly 160.21766208)
# CHGNet's batching calls torch.tensor() on volumes that carry grad: harmless, noisy every step.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
_PRETRAINED = ("0.3.0", "0.2.0", "r2scan")


class CHGNetBackbone(Backbone):
    name = "chgnet"
    reference_modules = ("composition_model",)  # AtomRef: per-element energies (eV/atom)
    GROUPS = (
        ("embedding", ("atom_embedding.*", "bond_embedding.*", "angle_embedding.*")),
        ("radial", ("bond_basis_expansion.*", "angle_basis_expansion.*", "bond_weights_ag.*", "bond_weights_bg.*")),
        ("interaction", ("atom_conv_layers.*",)),  # atom message passing
        ("bond", ("bond_conv_layers.*",)),  # bond updates from angles
        ("angle", ("angle_layers.*",)),  # angle updates
        ("readout", ("readout_norm.*", "mlp.*", "site_wise.*")),
        ("reference", ("composition_model.*",)),  # AtomRef: per-element reference energies
    )

    def __init__(self, model, device: str = "cpu", source: str = "chgnet"):
        super().__init__(model, device, source)
        self.cutoff = float(model.graph_converter.atom_graph_cutoff)
        self.fast = chgnet_fast.supports(model)  # exact rewrite of CHGNet.forward, see chgnet_fast

    def featurize(self, atoms: Atoms):
        # imported here: pymatgen.io.ase loads ase.io and scipy (~0.5 s), which a run whose graphs
        # come from the cache never needs
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = AseAtomsAdaptor.get_structure(self.as_periodic(atoms, self.cutoff))
        graph = self.model.graph_converter(structure, graph_id=None)
        return graph.to(self.device)

    def predict(self, graphs: Sequence, *, stress: bool = False, create_graph: bool = True) -> Prediction:
        if self.fast:
            return chgnet_fast.predict(self.model, graphs, stress=stress, create_graph=create_graph)
        out = self.model(list(graphs), task="efs" if stress else "ef")
        n_atoms = out["atoms_per_graph"]
        energy = out["e"] * n_atoms  # CHGNet is intensive: eV/atom -> eV
        forces = torch.cat(out["f"], dim=0)
        s = torch.stack(out["s"]) / GPA_PER_EV_A3 if stress else None
        return Prediction(energy=energy, forces=forces, stress=s, n_atoms=n_atoms)

    def predict_energy(self, graphs: Sequence) -> torch.Tensor:
        if not self.fast:
            return super().predict_energy(graphs)
        with torch.no_grad():  # the forward alone: no force backward, no graph kept
            return chgnet_fast.energy_of(self.model, graphs, stress=False)[0]

    def higher_derivatives(self):
        """SiLU, sigmoid and layer norm with closed-form third derivatives (`higher_order`): a
        Hessian-vector product of a force loss in fewer ops, and exact where torch's layer norm is
        not (its third derivative treats the saved mean and 1/std as constants, pytorch#175754)."""
        return chgnet_fast.higher_order.enabled() if self.fast else contextlib.nullcontext()

    def supported_numbers(self) -> set[int]:
        return set(range(1, self.model.composition_model.max_num_elements + 1))

    def shift_reference_energies(self, shifts: dict[int, float]) -> None:
        # AtomRef weights are per-atom energies of each element (features are fractions).
        weight = self.model.composition_model.fc.weight
        with torch.no_grad():
            for z, delta in shifts.items():
                weight[0, int(z) - 1] += float(delta)

    def reference_energies(self, numbers) -> dict[int, float]:
        weight = self.model.composition_model.fc.weight
        return {int(z): float(weight[0, int(z) - 1]) for z in numbers}

    def save_native(self, directory: Path) -> str:
        from optbench.io import torch_save

        fname = "chgnet.pth.tar"
        torch_save(directory / fname, {"model": self.model.as_dict()})
        return fname


def chgnet_class():
    """chgnet's CHGNet class, imported without what its packages' __init__ import and we never use."""
    from optbench.lazy_packages import defer_init

    # chgnet.model's and chgnet.utils' __init__ import MD, pymatgen's EOS (matplotlib) and VASP
    # parsers (scipy.signal): 1.5-2 s of every process that loads CHGNet, for names we do not use
    defer_init("chgnet.model", "chgnet.utils")
    from chgnet.model.model import CHGNet

    return CHGNet


def load(rest: str, device: str = "cpu") -> CHGNetBackbone:
    """`rest` is '' (latest pretrained), a pretrained version name, or a model file."""
    CHGNet = chgnet_class()
    quiet = contextlib.redirect_stdout(io.StringIO())  # CHGNet prints its parameter count
    if rest in ("", *_PRETRAINED):
        with quiet:
            model = CHGNet.load(model_name=rest or "0.3.0", use_device="cpu", verbose=False)
    else:
        path = Path(rest)
        if not path.is_file():
            raise InputError("CHGNet model file not found", file=path, field="model")
        with quiet:
            model = CHGNet.from_file(str(path))
    return CHGNetBackbone(model, device=device, source=f"chgnet:{rest}" if rest else "chgnet")
