"""A MACE user's fine-tuning YAML, as MACE's documentation writes one, runs through `optbench finetune --config`."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from ase.io import read, write

from optbench.cli import main

from .conftest import build_small_mace

E0S = {1: -13.568422383046626, 6: -1025.2770951782686, 8: -2035.5709809589698}  # eV, isolated H, C, O




def _relabel(src, dst):
    """The ethanol frames with MACE-style REF_energy / REF_forces keys."""
    frames = read(src, index=":")
    for atoms in frames:
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
    write(dst, frames, format="extxyz")
    return len(frames)


def test_mace_finetuning_yaml_runs(ethanol_small, tmp_path, capsys, cli_console):
    model = build_small_mace(tmp_path / "foundation.model", atomic_numbers=(1, 6, 8))
    n_train = _relabel(ethanol_small["train"], tmp_path / "train.xyz")
    _relabel(ethanol_small["id"], tmp_path / "test.xyz")
    config = {  # the naive fine-tuning example of MACE's documentation, on tiny data
        "name": "ethanol_finetuned", "results_dir": str(tmp_path / "results"), "model": "MACE",
        "foundation_model": str(model), "multiheads_finetuning": False,
        "train_file": str(tmp_path / "train.xyz"), "valid_fraction": 0.25, "test_file": str(tmp_path / "test.xyz"),
        "energy_key": "REF_energy", "forces_key": "REF_forces", "E0s": str(E0S),
        "energy_weight": 1.0, "forces_weight": 10.0, "lr": 0.001, "optimizer": "adam", "amsgrad": True,
        "scaling": "rms_forces_scaling", "batch_size": 6, "max_num_epochs": 2, "ema": True, "ema_decay": 0.99,
        "default_dtype": "float64", "device": "cpu", "seed": 3,
    }
    path = tmp_path / "finetune.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["finetune", "--config", str(path)]) == 0
    out = tmp_path / "results"
    result = json.loads((out / "results.json").read_text())
    assert result["status"] == "completed" and result["model"] == f"mace:{model}" and result["optimizer"] == "adam"
    n_fit = n_train - round(0.25 * n_train)
    assert result["total_steps"] == result["steps"] == 2 * math.ceil(n_fit / 6)  # max_num_epochs -> steps
    assert result["e0"]["mode"] == "mapping"
    assert result["e0"]["E0_eV"] == pytest.approx({"H": E0S[1], "C": E0S[6], "O": E0S[8]}, abs=1e-9)
    assert result["metrics"]["final"]["test"]["n_structures"] == 8 and result["metrics"]["final"]["test"]["forces_mae"] > 0
    assert result["provenance"]["versions"]["mace-torch"]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["ema_decay"] == 0.99 and saved["optimizer_kwargs"] == {"amsgrad": True} and saved["epochs"] == 2
    printed = capsys.readouterr().out
    assert printed.count("MACE options ignored") == 1
    ignored = next(line for line in printed.splitlines() if "MACE options ignored" in line)
    assert set(ignored.split("equivalent): ")[1].split(", ")) == {"model", "multiheads_finetuning", "scaling", "default_dtype"}
    assert "(epochs 2 x" in printed and "MACE options ignored" in (out / "log.txt").read_text()
