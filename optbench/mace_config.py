"""MACE's fine-tuning names (`mace_run_train --config FILE.yaml` and its flags) -> optbench's fields.

`from_mace(data, source)` rewrites a config mapping: MACE's names become optbench's (the table
`MAPPED` is the one home of that correspondence; the README shows it), `ema: true` becomes an
EMA decay, MACE's recipe (Adam with `scheduler: ReduceLROnPlateau` and/or `swa`/`stage_two`)
becomes optimizer `mace_recipe` with its settings, and in a MACE-style file every other MACE option
is collected once as ignored. Fields a MACE file leaves out take optbench's defaults, not MACE's
(within the recipe: the recipe's, which are MACE's, except stage two and EMA, off unless asked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase.units import GPa

from optbench.errors import InputError

EMA_DECAY = 0.99  # MACE's default ema_decay; also what a bare `--ema` / `ema: true` means
GPA_PER_EV_A3 = 1 / GPa  # MACE's stress loss is in eV/Å^3, optbench's in GPa
MACE_MP = {"small": "mace-mp-small", "medium": "mace-mp-medium", "large": "mace-mp-large"}
# MACE's `model` names an architecture, not a pretrained model: ignored in a MACE-style file
ARCHITECTURES = {"MACE", "ScaleShiftMACE", "BOTNet", "ScaleShiftBOTNet", "AtomicDipolesMACE",
                 "EnergyDipolesMACE", "AtomicDielectricMACE", "MACELES"}

# MACE name -> optbench field, with how the value is carried over (shown in the README table)
MAPPED: dict[str, tuple[str, str]] = {
    "train_file": ("train", "as is"),
    "valid_file": ("valid", "as is"),
    "valid_fraction": ("valid_fraction", "as is"),
    "test_file": ("tests", "one test set named `test` (ID)"),
    "E0s": ("e0", "`average`, `foundation` (= keep), `estimated` (= refit), a dict or a JSON file"),
    "energy_key": ("energy_key", "as is"),
    "forces_key": ("forces_key", "as is"),
    "stress_key": ("stress_key", "as is"),
    "virials_key": ("virial_key", "as is"),
    "foundation_model": ("model", "`small`/`medium`/`large` -> `mace-mp-*`; a file -> `mace:PATH`; or any optbench spec"),
    "foundation_head": ("model", "appended as `@HEAD`"),
    "max_num_epochs": ("epochs", "max_steps unset, so steps = epochs x ceil(training structures / batch_size)"),
    "batch_size": ("batch_size", "as is"),
    "valid_batch_size": ("eval_batch_size", "as is"),
    "lr": ("lr", "as is"),
    "optimizer": ("optimizer", "adam, adamw, schedulefree; adam with the recipe options below -> mace_recipe"),
    "lbfgs": ("optimizer", "`true` -> lbfgs"),
    "weight_decay": ("weight_decay", "as is"),
    "amsgrad": ("optimizer_kwargs", "`amsgrad` for adam/adamw (MACE turns it on by default, optbench's adam does not; mace_recipe does)"),
    "beta": ("optimizer_kwargs", "`betas: [beta, 0.999]`"),
    "scheduler": ("schedule", "constant, cosine, warmup, warmup_cosine; ReduceLROnPlateau (with adam) -> optimizer "
                  "mace_recipe; ExponentialLR is ignored"),
    "lr_factor": ("recipe.lr_factor", "mace_recipe's plateau factor"),
    "scheduler_patience": ("recipe.scheduler_patience", "mace_recipe's plateau patience, counted in validations"),
    "swa": ("recipe.stage_two", "`true` (with adam) -> mace_recipe with stage two; left out: no stage two, as in MACE"),
    "stage_two": ("recipe.stage_two", "as `swa`"),
    "start_swa": ("recipe.start_stage_two", "epochs, as in MACE (steps = epochs x steps per epoch)"),
    "start_stage_two": ("recipe.start_stage_two", "as `start_swa`"),
    "swa_lr": ("recipe.stage_two_lr", "as is"),
    "stage_two_lr": ("recipe.stage_two_lr", "as is"),
    "swa_energy_weight": ("recipe.stage_two_weights.energy", "as is"),
    "stage_two_energy_weight": ("recipe.stage_two_weights.energy", "as is"),
    "swa_forces_weight": ("recipe.stage_two_weights.forces", "as is"),
    "stage_two_forces_weight": ("recipe.stage_two_weights.forces", "as is"),
    "swa_stress_weight": ("recipe.stage_two_weights.stress", "divided by 160.2^2"),
    "stage_two_stress_weight": ("recipe.stage_two_weights.stress", "divided by 160.2^2"),
    "loss": ("loss", "`huber` -> huber; `weighted`, `ef`, `stress`, `virials` -> mse; others ignored"),
    "huber_delta": ("huber_delta", "as is (eV/atom, eV/Å, eV/Å^3)"),
    "ema": ("ema_decay", "`true` -> ema_decay (default 0.99), `false` -> no EMA (under mace_recipe: left out -> no EMA)"),
    "ema_decay": ("ema_decay", "used when `ema: true`"),
    "seed": ("seed", "as is"),
    "device": ("device", "as is"),
    "energy_weight": ("loss_weights.energy", "as is (both: MSE of energy per atom, eV/atom)"),
    "forces_weight": ("loss_weights.forces", "as is (both: MSE of force components, eV/Å)"),
    "stress_weight": ("loss_weights.stress", "divided by 160.2^2 (MACE: eV/Å^3, optbench: GPa)"),
    "clip_grad": ("clip_grad", "`null` -> 0 (no clipping)"),
    "patience": ("patience", "counted in evaluations (every eval_every steps), not epochs"),
    "results_dir": ("out", "first of results_dir, model_dir, work_dir/name"),
    "model_dir": ("out", "when results_dir is not given"),
    "work_dir": ("out", "out = work_dir/name"),
    "name": ("out", "out = work_dir/name (work_dir default `runs`)"),
}


# MACE's recipe options -> mace_recipe's settings (optbench.optim.recipe.Recipe); stress weights rescaled
RECIPE_OPTIONS = {"lr_factor": "lr_factor", "scheduler_patience": "scheduler_patience", "start_swa": "start_stage_two",
                  "start_stage_two": "start_stage_two", "swa_lr": "stage_two_lr", "stage_two_lr": "stage_two_lr"}
STAGE_TWO_WEIGHTS = {f"{prefix}_{term}_weight": term for prefix in ("swa", "stage_two") for term in ("energy", "forces", "stress")}
MSE_LOSSES = ("weighted", "ef", "stress", "virials")  # MACE's MSE losses of energy per atom, forces (and stress)


def is_mace_style(data: dict) -> bool:
    """A mapping that uses at least one MACE-only name (not an optbench field, not `ema`)."""
    from optbench.config import FinetuneConfig

    mace_only = set(MAPPED) - set(FinetuneConfig.model_fields) - {"ema", "ema_decay"}
    return any(key in mace_only for key in data)


def _model(value: Any, head: Any) -> str:
    text = str(value)
    if text in MACE_MP:
        text = MACE_MP[text]
    elif Path(text).is_file() and ":" not in text:
        text = f"mace:{text}"
    return f"{text}@{head}" if head else text


def _out(data: dict) -> str | None:
    for key in ("results_dir", "model_dir"):
        if data.get(key):
            return str(data[key])
    if data.get("name") or data.get("work_dir"):
        return str(Path(str(data.get("work_dir") or "runs")) / str(data.get("name") or "run"))
    return None


def _ema(value: Any, decay: Any) -> float:
    if value is True:
        return float(decay) if decay is not None else EMA_DECAY
    if value is False or value is None:
        return 0.0
    return float(value)  # optbench's own `--ema 0.999`


def _set(out: dict, field: str, value: Any, source: str, name: str) -> None:
    if field in out and out[field] != value:
        raise InputError(f"'{name}' and '{field}' both given, with different values", file=source, field=name)
    out[field] = value


def _recipe(data: dict, out: dict) -> list[str]:
    """MACE's recipe (Adam, ReduceLROnPlateau and/or stage two), or optimizer mace_recipe named with MACE's
    options -> optimizer mace_recipe and its settings in `out`; the MACE options it used (none when
    `data` does not ask for the recipe)."""
    scheduler, stage_two = data.get("scheduler"), bool(data.get("swa") or data.get("stage_two"))
    named = str(data.get("optimizer", "adam")).lower()  # MACE's default optimizer is adam
    asked = named == "mace_recipe" or scheduler == "ReduceLROnPlateau" or (stage_two and scheduler is None)
    if not asked or data.get("lbfgs") or named not in ("adam", "mace_recipe") or scheduler not in (None, "ReduceLROnPlateau"):
        return []
    settings = dict(out.get("recipe") or {})
    if named == "adam":  # MACE's own file: stage two and EMA only where it asks for them, as MACE runs it
        settings["stage_two"] = stage_two
        if not data.get("ema"):
            settings["ema_decay"] = 0.0
    elif "swa" in data or "stage_two" in data:
        settings["stage_two"] = stage_two
    weights = dict(settings.get("stage_two_weights") or {})
    for key, value in data.items():
        if key in RECIPE_OPTIONS:
            settings[RECIPE_OPTIONS[key]] = value
        elif key in STAGE_TWO_WEIGHTS:
            term = STAGE_TWO_WEIGHTS[key]
            weights[term] = float(value) / (GPA_PER_EV_A3**2 if term == "stress" else 1.0)
    if weights:
        settings["stage_two_weights"] = weights
    out["optimizer"], out["recipe"] = "mace_recipe", settings
    keys = ("scheduler", "swa", "stage_two", "optimizer", *RECIPE_OPTIONS, *STAGE_TWO_WEIGHTS)
    return [k for k in data if k in keys]


def _loss(out: dict, mace: bool) -> str | None:
    """MACE's `loss` names in `out` -> optbench's; "used", "ignored" or None (optbench's own name)."""
    value = out.get("loss")
    if value is None or value in ("mse", "huber"):
        return "used" if value == "huber" and mace else None
    if value in MSE_LOSSES:
        out["loss"] = "mse"
        return "used"
    if mace:
        out.pop("loss")
        return "ignored"
    return None  # an optbench file: validation names the field


def from_mace(data: dict[str, Any], source: str = "config", cli: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Optbench's fields for `data` (optbench's or MACE's names) and the notes to log about it.

    cli=True: command-line flags, where `--ema_decay D` alone turns EMA on with decay D.
    """
    from optbench.config import FinetuneConfig

    fields = set(FinetuneConfig.model_fields)
    mace = is_mace_style(data)
    architecture = mace and data.get("model") in ARCHITECTURES
    out = {k: v for k, v in data.items() if k in fields and not (architecture and k == "model")}
    used, ignored = [], ["model"] if architecture else []
    if "clip_grad" in out and out["clip_grad"] is None:
        out["clip_grad"] = 0.0  # MACE's `clip_grad: null`: no clipping
    if "ema" in data:
        out["ema_decay"] = _ema(data["ema"], data.get("ema_decay"))
        used += ["ema", *(["ema_decay"] if "ema_decay" in data else [])] if mace else []
    elif mace and not cli and "ema_decay" in data:
        out.pop("ema_decay", None)  # MACE uses ema_decay only together with `ema: true`
        ignored.append("ema_decay")  # without `ema: true`
    recipe = _recipe(data, out) if mace else []
    loss = _loss(out, mace)
    if loss:
        (used if loss == "used" else ignored).append("loss")
    for key, value in data.items():
        if key in recipe:
            used.append(key)
            continue
        if key in fields or key in ("ema", "ema_decay"):
            continue
        if key not in MAPPED:
            if not mace:  # an optbench file: a misspelt field is an error, not a silent default
                raise InputError("unknown field (not an optbench or MACE option)", file=source, field=key)
            ignored.append(key)
            continue
        if _carry(key, value, data, out, source):
            used.append(key)
        else:
            ignored.append(key)  # a value optbench has no equivalent for
    notes = []
    if used:
        notes.append(f"{source}: MACE options mapped: " + ", ".join(f"{k} -> {MAPPED[k][0]}" for k in used))
    if ignored:
        notes.append(f"{source}: MACE options ignored (no optbench equivalent): " + ", ".join(ignored))
    return out, notes


def _carry(key: str, value: Any, data: dict, out: dict, source: str) -> bool:
    """Put one MACE option into `out`; False when its value has no optbench meaning."""
    field = MAPPED[key][0]
    if key in ("train_file", "valid_file", "E0s", "virials_key", "valid_batch_size"):  # renamed only
        _set(out, field, value, source, key)
    elif key == "test_file":
        out["tests"] = {**out.get("tests", {}), "test": value}
    elif key in ("foundation_model", "foundation_head"):
        if key == "foundation_head" and "foundation_model" in data:
            return True  # folded into foundation_model
        _set(out, "model", _model(data.get("foundation_model", out.get("model", "chgnet")), data.get("foundation_head")), source, key)
    elif key == "max_num_epochs":
        _set(out, "epochs", value, source, key)
        out.setdefault("max_steps", None)
    elif key == "lbfgs":
        if value:
            out["optimizer"] = "lbfgs"  # MACE's switch to L-BFGS wins over `optimizer`
    elif key in ("amsgrad", "beta"):
        if str(data.get("optimizer") or out.get("optimizer") or "adamw") not in ("adam", "adamw", "radam", "mace_recipe"):
            return False
        kwargs = dict(out.get("optimizer_kwargs") or {})
        kwargs.update({"amsgrad": bool(value)} if key == "amsgrad" else {"betas": [float(value), 0.999]})
        out["optimizer_kwargs"] = kwargs
    elif key == "scheduler":
        if value not in ("constant", "cosine", "warmup", "warmup_cosine"):
            return False
        _set(out, "schedule", value, source, key)
    elif key in RECIPE_OPTIONS or key in STAGE_TWO_WEIGHTS or key in ("swa", "stage_two"):
        return False  # recipe options without the recipe (another optimizer or scheduler)
    elif key.endswith("_weight"):
        scale = 1 / GPA_PER_EV_A3**2 if key == "stress_weight" else 1.0
        out["loss_weights"] = {**(out.get("loss_weights") or {}), field.split(".")[1]: float(value) * scale}
    elif field == "out":
        path = _out(data)
        if path is not None:
            out.setdefault("out", path)
    return True
