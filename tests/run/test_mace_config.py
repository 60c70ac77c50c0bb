"""MACE's fine-tuning names in a YAML or on the command line map onto optbench's fields."""

from __future__ import annotations

import pytest
import yaml

from optbench.config import FinetuneConfig
from optbench.errors import InputError
from optbench.mace_config import EMA_DECAY, GPA_PER_EV_A3, from_mace


def _config(tmp_path, data: dict, **flags) -> FinetuneConfig:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return FinetuneConfig.from_sources(path, flags)


def test_mace_yaml_fields_map_and_the_rest_are_listed_once(tmp_path, ethanol_small):
    mace = {
        "name": "ethanol_ft", "model": "MACE", "foundation_model": "small", "multiheads_finetuning": False,
        "train_file": str(ethanol_small["train"]), "valid_fraction": 0.2, "test_file": str(ethanol_small["id"]),
        "E0s": "average", "energy_key": "REF_energy", "forces_key": "REF_forces", "virials_key": "REF_virial",
        "energy_weight": 1.0, "forces_weight": 100.0, "stress_weight": 10.0, "lr": 0.01, "optimizer": "adam",
        "amsgrad": True, "weight_decay": 5e-7, "scheduler": "ReduceLROnPlateau", "batch_size": 2, "max_num_epochs": 6,
        "ema": True, "ema_decay": 0.995, "clip_grad": None, "default_dtype": "float64", "device": "cpu", "seed": 3,
        "swa": True, "start_swa": 4, "scaling": "rms_forces_scaling",
    }
    cfg = _config(tmp_path, mace)
    assert cfg.model == "mace-mp-small" and cfg.train == ethanol_small["train"] and cfg.tests == {"test": ethanol_small["id"]}
    assert (cfg.e0, cfg.energy_key, cfg.forces_key, cfg.virial_key) == ("average", "REF_energy", "REF_forces", "REF_virial")
    assert (cfg.epochs, cfg.max_steps, cfg.batch_size, cfg.lr, cfg.seed, cfg.valid_fraction) == (6, None, 2, 0.01, 3, 0.2)
    # Adam with ReduceLROnPlateau and stage two is MACE's recipe
    assert cfg.optimizer == "mace_recipe" and cfg.optimizer_kwargs == {"amsgrad": True} and cfg.weight_decay == 5e-7
    assert cfg.recipe == {"stage_two": True, "start_stage_two": 4}
    assert cfg.ema_decay == 0.995 and cfg.clip_grad == 0 and cfg.schedule == "constant"
    assert cfg.loss_weights.energy == 1.0 and cfg.loss_weights.forces == 100.0
    assert cfg.loss_weights.stress == pytest.approx(10.0 / GPA_PER_EV_A3**2)  # (eV/Å^3)^2 -> GPa^2
    assert str(cfg.out) == "runs/ethanol_ft"
    ignored = [n for n in cfg._notes if "ignored" in n]
    assert len(ignored) == 1
    names = set(ignored[0].split("equivalent): ")[1].split(", "))
    assert names == {"model", "multiheads_finetuning", "default_dtype", "scaling"}


def test_flags_override_a_mace_yaml_under_either_name(tmp_path, ethanol_small):
    data = {"train_file": str(ethanol_small["train"]), "max_num_epochs": 5, "results_dir": str(tmp_path / "r")}
    cfg = _config(tmp_path, data, max_steps=3, ema=True, e0="H=-13.6,C=-1025.3,O=-2035.6")
    assert (cfg.epochs, cfg.max_steps, cfg.ema_decay, str(cfg.out)) == (5, 3, EMA_DECAY, str(tmp_path / "r"))
    assert cfg.e0 == {"H": -13.6, "C": -1025.3, "O": -2035.6}
    cfg = _config(tmp_path, data, train_file=str(ethanol_small["id"]), E0s="{1: -13.6, 6: -1025.3, 8: -2035.6}")
    assert cfg.train == ethanol_small["id"] and cfg.e0 == {"H": -13.6, "C": -1025.3, "O": -2035.6}


def test_ema_true_in_an_optbench_yaml(tmp_path, ethanol_small):
    assert _config(tmp_path, {"train": str(ethanol_small["train"]), "ema": True}).ema_decay == EMA_DECAY
    assert _config(tmp_path, {"train": str(ethanol_small["train"]), "ema": 0.9}).ema_decay == 0.9
    assert _config(tmp_path, {"train": str(ethanol_small["train"]), "ema": False, "ema_decay": 0.9}).ema_decay == 0.0
    # MACE uses ema_decay only with `ema: true`
    assert _config(tmp_path, {"train_file": str(ethanol_small["train"]), "ema_decay": 0.9}).ema_decay == 0.0


def test_foundation_model_file_and_head(tmp_path):
    model = tmp_path / "my.model"
    model.write_bytes(b"")
    data, _ = from_mace({"foundation_model": str(model), "foundation_head": "pbe"})
    assert data["model"] == f"mace:{model}@pbe"
    assert from_mace({"foundation_model": "chgnet"})[0]["model"] == "chgnet"


def test_a_mace_yaml_without_train_file_says_which_field(tmp_path):
    with pytest.raises(InputError, match="field 'train'.*train_file"):
        _config(tmp_path, {"foundation_model": "small", "max_num_epochs": 2})


def test_a_misspelt_optbench_field_is_still_an_error(tmp_path, ethanol_small):
    with pytest.raises(InputError, match="config.yaml: field 'lerning_rate'"):
        _config(tmp_path, {"train": str(ethanol_small["train"]), "lerning_rate": 1e-3})


def test_maces_recipe_options_map_onto_mace_recipe(tmp_path, ethanol_small):
    train = str(ethanol_small["train"])
    cfg = _config(tmp_path, {
        "train_file": train, "optimizer": "adam", "scheduler": "ReduceLROnPlateau", "lr_factor": 0.5,
        "scheduler_patience": 3, "stage_two": True, "start_stage_two": 2, "stage_two_lr": 1e-4, "swa_energy_weight": 500.0,
        "swa_stress_weight": 10.0, "loss": "huber", "huber_delta": 0.02, "ema": True})
    assert cfg.optimizer == "mace_recipe" and (cfg.loss, cfg.huber_delta, cfg.ema_decay) == ("huber", 0.02, EMA_DECAY)
    assert cfg.recipe == {"stage_two": True, "lr_factor": 0.5, "scheduler_patience": 3, "start_stage_two": 2,
                          "stage_two_lr": 1e-4, "stage_two_weights": {"energy": 500.0, "stress": pytest.approx(10.0 / GPA_PER_EV_A3**2)}}
    assert not [n for n in cfg._notes if "ignored" in n]
    # MACE without --swa and --ema: the plateau alone (MACE's defaults otherwise), no stage two, no EMA
    plain = _config(tmp_path, {"train_file": train, "scheduler": "ReduceLROnPlateau"})
    assert plain.optimizer == "mace_recipe" and plain.recipe == {"stage_two": False, "ema_decay": 0.0}
    assert _config(tmp_path, {"train_file": train, "swa": True}).recipe == {"stage_two": True, "ema_decay": 0.0}


@pytest.mark.parametrize("data", [{"optimizer": "adamw", "scheduler": "ReduceLROnPlateau", "swa": True},
                                  {"scheduler": "ExponentialLR", "swa": True, "swa_lr": 1e-4},
                                  {"lbfgs": True, "swa": True}])
def test_recipe_options_without_maces_recipe_are_listed_as_ignored(tmp_path, ethanol_small, data):
    cfg = _config(tmp_path, {"train_file": str(ethanol_small["train"]), **data})
    assert cfg.optimizer != "mace_recipe" and cfg.recipe == {}
    ignored = next(n for n in cfg._notes if "ignored" in n)
    assert "swa" in ignored.split("equivalent): ")[1].split(", ")


def test_recipe_settings_in_an_optbench_yaml_and_on_the_command_line(tmp_path, ethanol_small):
    from optbench.cli import build_parser
    from optbench.cli_args import finetune_overrides

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": str(ethanol_small["train"]), "optimizer": "mace_recipe",
                                    "recipe": {"lr_factor": 0.5, "stage_two": False}}))
    args = build_parser().parse_args(["finetune", "--config", str(path), "--recipe", "scheduler_patience=2",
                                      "--recipe", "stage_two=true"])
    cfg = FinetuneConfig.from_sources(args.config, finetune_overrides(args))
    assert cfg.recipe == {"lr_factor": 0.5, "stage_two": True, "scheduler_patience": 2}  # merged, flags win
    with pytest.raises(InputError, match="field 'recipe'.*has no recipe"):
        FinetuneConfig.from_sources(path, {"optimizer": "adamw"})
    with pytest.raises(InputError, match="field 'recipe'.*lr_factor: Input should be less than 1"):
        FinetuneConfig.from_sources(path, {"recipe": {"lr_factor": 2}})
    with pytest.raises(InputError, match="brings its own LR schedule"):
        FinetuneConfig.from_sources(path, {"schedule": "cosine"})


def test_mace_recipe_named_with_maces_options_keeps_its_own_defaults(tmp_path, ethanol_small):
    cfg = _config(tmp_path, {"train": str(ethanol_small["train"]), "optimizer": "mace_recipe", "scheduler_patience": 3,
                             "swa_lr": 1e-4})
    assert cfg.optimizer == "mace_recipe" and cfg.recipe == {"scheduler_patience": 3, "stage_two_lr": 1e-4}
    assert cfg.ema_decay == 0.0  # the recipe's EMA (0.99) applies: the run sets none
