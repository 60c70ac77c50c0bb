"""One environment serves CHGNet, SevenNet and MACE: every backbone extra is installed, imports and runs."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from packaging.requirements import Requirement

from optbench.backbones import MACE_TORCH_VERSION

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def extra(name: str) -> list[Requirement]:
    with open(PYPROJECT, "rb") as fh:
        return [Requirement(r) for r in tomllib.load(fh)["project"]["optional-dependencies"][name]]


@pytest.mark.parametrize("name", ["sevennet", "mace"])
def test_every_requirement_of_the_extra_is_installed_in_range(name):
    for req in extra(name):
        version = metadata.version(req.name)
        assert req.specifier.contains(version, prereleases=True), f"{req.name} {version} not in {req}"


def test_torch_is_the_pinned_release_and_a_cpu_build_pulled_no_cuda_wheels():
    """make install pins torch; a CPU build (TORCH=cpu, where its index or a local wheel is reachable) must not
    have CUDA wheels beside it (a dependency pulling them); a CUDA build (TORCH=cuda or PyPI's default) may."""
    assert torch.__version__.startswith("2.13.0")
    cuda = [d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-") and "cu1" in d.metadata["Name"].lower()]
    if torch.version.cuda is None:
        assert cuda == []


def test_one_e3nn_serves_sevennet_and_mace():
    import e3nn
    import mace
    import sevenn

    assert metadata.version("mace-torch") == MACE_TORCH_VERSION == mace.__version__
    assert tuple(int(x) for x in e3nn.__version__.split(".")[:2]) >= (0, 5)
    assert sevenn.__version__ == metadata.version("sevenn")


def si() -> object:
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.02, seed=0)
    return atoms


def test_chgnet_forward_pass():
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    atoms = si()
    atoms.calc = CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")
    assert -5.6 < atoms.get_potential_energy() / len(atoms) < -5.2  # PBE Si: about -5.4 eV/atom
    assert np.isfinite(atoms.get_forces()).all()


def test_sevennet_forward_pass():
    from sevenn.calculator import SevenNetCalculator

    atoms = si()
    atoms.calc = SevenNetCalculator("7net-0", device="cpu")
    assert -5.6 < atoms.get_potential_energy() / len(atoms) < -5.2
    assert np.isfinite(atoms.get_stress()).all()


def test_mace_forward_pass(small_mace_file):
    from mace.calculators import MACECalculator

    atoms = si()
    atoms.calc = MACECalculator(model_paths=str(small_mace_file), device="cpu", default_dtype="float64")
    e0 = -3.0 * len(atoms)  # the small model's E0 for Si plus a finite interaction energy
    energy = atoms.get_potential_energy()
    assert np.isfinite(energy) and energy != pytest.approx(e0, abs=1e-9)
    assert atoms.get_forces().shape == (2, 3)
