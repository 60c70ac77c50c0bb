"""The backbone protocol: one small adapter per pretrained interatomic potential.

Units everywhere: energy eV (total per structure), forces eV/Å, stress eV/Å^3 with ASE's sign
(positive in tension), positions Å.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from optbench.errors import InputError

BACKBONE_FILE = "backbone.json"


@dataclass
class Prediction:
    """Differentiable predictions for a batch of B structures with N atoms in all."""

    energy: torch.Tensor  # (B,) eV
    forces: torch.Tensor  # (N, 3) eV/Å
    stress: torch.Tensor | None  # (B, 3, 3) eV/Å^3, ASE sign
    n_atoms: torch.Tensor  # (B,)


class Backbone(ABC):
    """A pretrained potential whose parameters a torch optimizer can train.

    Adapters implement `featurize` (once per structure, cached by the caller), `predict`,
    `save` and the reference-energy hooks; everything else (loop, evaluation, properties,
    curvature, studies) only talks to this protocol.
    """

    name: str = "backbone"
    model: torch.nn.Module
    # submodules holding the per-element reference energies (E0s), written in place by
    # `shift_reference_energies`: the E0 setting owns them, adapter strategies (lora) leave them out
    reference_modules: tuple[str, ...] = ()
    # parameter groups of fine-tuning strategies: (group, fnmatch patterns of parameter names), first match
    # wins; the names embedding, radial, interaction, readout, reference mean the same on every backbone
    GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __init__(self, model: torch.nn.Module, device: str = "cpu", source: str = ""):
        self.model = model.to(device)
        self.device = torch.device(device)
        self.source = source

    # ---- data
    @abstractmethod
    def featurize(self, atoms: Atoms) -> Any:
        """Graph (or other cached input) of one structure; computed once, reused every epoch."""

    @abstractmethod
    def predict(self, graphs: Sequence[Any], *, stress: bool = False, create_graph: bool = True) -> Prediction:
        """Energies, forces (and stress) of a batch of featurized structures.

        create_graph=True (training, curvature) keeps the graph of forces and stress, so a loss on
        them can be differentiated with respect to the parameters, in train or eval mode alike;
        False is for inference (calculators, evaluation) and skips that cost.
        """

    def predict_energy(self, graphs: Sequence[Any]) -> torch.Tensor:
        """Energies (B,) eV of a batch, the same numbers as `predict(graphs).energy`; adapters that
        can skip the force backward do (the E0 refit needs energies only). Call it inside
        `evaluate.inference`."""
        return self.predict(graphs, stress=False, create_graph=False).energy.detach()

    def higher_derivatives(self):
        """Context in which `predict` builds graphs that will be differentiated three times (the
        curvature of a force loss). Adapters may switch to closed-form higher derivatives there
        (the same derivatives in fewer ops); the default changes nothing."""
        return contextlib.nullcontext()

    def supported_numbers(self) -> set[int]:
        """Atomic numbers the backbone can handle."""
        return set(range(1, 95))

    def check_elements(self, numbers: Sequence[int], path: str | Path | None = None) -> None:
        unknown = sorted(set(int(z) for z in numbers) - self.supported_numbers())
        if unknown:
            from ase.data import chemical_symbols

            names = ", ".join(chemical_symbols[z] for z in unknown)
            raise InputError(f"element(s) {names} unknown to backbone '{self.name}'", file=path, field="species")

    # ---- reference energies (E0)
    @abstractmethod
    def shift_reference_energies(self, shifts: dict[int, float]) -> None:
        """Add `shifts[Z]` eV to the per-atom reference energy of element Z."""

    def reference_energies(self, numbers: Sequence[int]) -> dict[int, float]:
        """Current per-atom reference energy (eV) of each element Z in `numbers`."""
        raise InputError(f"backbone '{self.name}' cannot report its reference energies; use e0 refit or keep", field="e0")

    # ---- parameters and persistence
    def parameters(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def named_parameters(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def parameter_groups(self) -> dict[str, list[str]]:
        """Group name -> names of the model's parameters (trainable or not), each in exactly one group,
        groups in `GROUPS` order; from `GROUPS`, else one group 'all'. Unmatched names go to 'other'."""
        return group_parameters((n for n, _ in self.model.named_parameters()), self.GROUPS)

    @abstractmethod
    def save_native(self, directory: Path) -> str:
        """Write the model in the backbone's own format under `directory`; return the file name."""

    def save(self, directory: str | Path) -> Path:
        """Native model file plus `backbone.json` naming the adapter, so `load_backbone(dir)` works."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fname = self.save_native(directory)
        from optbench.io import write_json

        write_json(directory / BACKBONE_FILE, {"backbone": self.name, "file": fname, "source": self.source})
        return directory / fname

    def calculator(self, **kwargs) -> BackboneCalculator:
        return BackboneCalculator(self, **kwargs)

    # ---- helpers shared by adapters
    @staticmethod
    def as_periodic(atoms: Atoms, cutoff: float) -> Atoms:
        """A copy that every periodic graph builder accepts: non-periodic structures go into a
        box large enough (extent + 2 cutoff + 1 Å) that no atom sees its own images."""
        if atoms.pbc.all() and atoms.cell.rank == 3:
            return atoms
        if atoms.pbc.any():
            raise InputError("mixed periodic/non-periodic boundaries are not supported", field="pbc")
        pos = atoms.get_positions()
        extent = pos.max(axis=0) - pos.min(axis=0)
        box = extent + 2 * cutoff + 1.0
        out = Atoms(numbers=atoms.numbers, positions=pos - pos.min(axis=0) + cutoff + 0.5, cell=np.diag(box), pbc=True)
        return out


class BackboneCalculator(Calculator):
    """ASE calculator for any backbone: energy (eV), forces (eV/Å), stress (eV/Å^3)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, backbone: Backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        periodic = bool(self.atoms.pbc.all())
        want_stress = periodic and "stress" in properties
        self.backbone.model.eval()
        graph = self.backbone.featurize(self.atoms)
        with torch.enable_grad():
            pred = self.backbone.predict([graph], stress=want_stress, create_graph=False)
        energy = float(pred.energy.detach().sum())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": pred.forces.detach().cpu().double().numpy(),
        }
        if want_stress and pred.stress is not None:
            from ase.stress import full_3x3_to_voigt_6_stress

            self.results["stress"] = full_3x3_to_voigt_6_stress(pred.stress[0].detach().cpu().double().numpy())


def group_parameters(names: Iterable[str], groups: Sequence[tuple[str, Sequence[str]]]) -> dict[str, list[str]]:
    """Each name into the first group with a matching fnmatch pattern ('other' when none; 'all' without groups)."""
    out: dict[str, list[str]] = {}
    for name in names:
        group = next((g for g, patterns in groups if any(fnmatchcase(name, pat) for pat in patterns)),
                     "other" if groups else "all")
        out.setdefault(group, []).append(name)
    order = [g for g, _ in groups] + ["other", "all"]
    return {g: out[g] for g in order if g in out}


def split_suffix(rest: str) -> tuple[str, str]:
    """'NAME@SUFFIX' -> (NAME, SUFFIX) (a MACE head, a SevenNet modal); an existing file path is never split."""
    if "@" not in rest or Path(rest).is_file():
        return rest, ""
    name, _, suffix = rest.rpartition("@")
    return name, suffix


def read_backbone_json(directory: Path) -> dict:
    with open(directory / BACKBONE_FILE) as fh:
        return json.load(fh)
