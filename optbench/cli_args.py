"""The `optbench finetune` flags (optbench's names with MACE's beside them) and --help with defaults,
and the argument types the other commands share (NAME=VALUE, whole numbers, property names).

Every flag's dest is a FinetuneConfig field or a MACE name that `optbench.mace_config` maps, so
the overrides are the parsed flags as they stand; flags not given are absent (argparse.SUPPRESS)
and leave the YAML's values or the config's defaults in place.
"""

from __future__ import annotations

import argparse


def kv(text: str) -> tuple[str, str]:
    """NAME=VALUE -> (NAME, VALUE)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def positive_int(text: str) -> int:
    """A whole number >= 1 (--threads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def property_name(name: str) -> str:
    """A name of the property registry, read when the property command is parsed (the registry
    imports the property classes, which the other commands do not need)."""
    from optbench.properties import PROPERTIES

    if name not in PROPERTIES:
        raise argparse.ArgumentTypeError(f"unknown property '{name}' (choose from {', '.join(PROPERTIES)})")
    return name


def _numbers(text: str, what: str) -> dict[str, float]:
    """KEY=NUMBER,... -> {key: number}; `what` names the number in the error ('loss weight')."""
    out = {}
    for part in text.split(","):
        key, value = kv(part)
        try:
            out[key] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} '{key}' is not a number: '{value}'") from None
    return out


def weights(text: str) -> dict[str, float]:
    """NAME=WEIGHT,... -> {name: weight} (--loss-weights energy=1,forces=10)."""
    return _numbers(text, "loss weight")


def lr_factors(text: str) -> dict[str, float]:
    """GROUP=FACTOR,... -> {group: factor} (--lr-factors embedding=0.1,readout=2)."""
    return _numbers(text, "LR factor of")


def _ema(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"EMA decay must be a number in [0, 1), got '{text}'") from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' where an option has a default (not for None, flags or suppressed)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = self._default(action)
        if "%(default)" in text or action.required or any(default is x for x in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: {default})"

    def _default(self, action: argparse.Action):
        return action.default


class FinetuneHelpFormatter(HelpFormatter):
    """Defaults of `finetune` come from FinetuneConfig itself (looked up only when --help is asked)."""

    def _default(self, action: argparse.Action):
        from optbench.config import FinetuneConfig

        field = FinetuneConfig.model_fields.get(action.dest)
        if field is None or field.is_required() or action.dest in ("loss_weights", "tests", "recipe"):
            return None
        return field.get_default(call_default_factory=True)


def use_help_formatter(parser: argparse.ArgumentParser) -> None:
    """Give `parser` and all its subcommands the formatter that prints defaults."""
    if parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                use_help_formatter(sub)


def add_finetune_arguments(p: argparse.ArgumentParser) -> None:
    """optbench's flags, with MACE's `mace_run_train` names as aliases or beside them."""
    from optbench.optim import REGISTRY

    p.formatter_class = FinetuneHelpFormatter
    p.argument_default = argparse.SUPPRESS
    a = p.add_argument
    a("--config", default=None, help="YAML run config: optbench's fields or a MACE fine-tuning YAML; flags override it")
    a("--model", help="backbone: chgnet, sevennet-0, mace:PATH, mace-mp-small or a RUN_DIR")
    a("--foundation_model", help="MACE's name: small|medium|large (MACE-MP), a MACE model file, or a --model spec")
    a("--train", "--train_file", dest="train", help="training extxyz file (energies eV, forces eV/Å, stress eV/Å^3)")
    a("--valid", "--valid_file", dest="valid", help="validation extxyz file (unset: --valid-fraction of --train)")
    a("--test", dest="tests", action="append", type=kv, metavar="NAME=FILE",
      help="named test set (repeatable); a name starting with 'ood' is tagged OOD")
    a("--test_file", help="MACE's name: one test set, named 'test'")
    a("--optimizer", help=f"registry name ({', '.join(REGISTRY)}) or module:Class")
    a("--lr", type=float, help="learning rate (peak of the schedule)")
    a("--batch-size", "--batch_size", dest="batch_size", type=int, help="training structures per step")
    a("--max-steps", "--max_steps", dest="max_steps", type=int, help="budget in optimizer steps (0: evaluate only)")
    a("--epochs", type=int, help="budget in passes over the training split; the smaller of this and --max-steps applies")
    a("--max_num_epochs", type=int,
      help="MACE's name: budget in epochs without a --max-steps cap; steps = epochs x ceil(training structures / batch size)")
    a("--seed", type=int, help="seed of the split, the batch order and torch")
    a("--energy-key", "--energy_key", dest="energy_key", help="extxyz key of the energy (eV)")
    a("--forces-key", "--forces_key", dest="forces_key", help="extxyz key of the forces (eV/Å)")
    a("--stress-key", "--stress_key", dest="stress_key", help="extxyz key of the stress (eV/Å^3, ASE sign)")
    a("--virial-key", "--virials_key", dest="virial_key", help="extxyz key of the virial (eV), used when there is no stress")
    a("--loss-weights", type=weights, metavar="energy=1,forces=10,stress=0.1",
      help="weights of the MSE terms: energy per atom (eV/atom)^2, forces (eV/Å)^2, stress (GPa)^2 (default: energy=1,forces=10,stress=0.1)")
    a("--loss", choices=["mse", "huber"], help="per-term loss; huber: MACE's weighted Huber with --huber-delta")
    a("--huber-delta", "--huber_delta", dest="huber_delta", type=float,
      help="Huber delta in eV/atom, eV/Å and eV/Å^3, one for all three terms (the default is MACE's)")
    a("--recipe", action="append", type=kv, metavar="NAME=VALUE",
      help="a setting of the optimizer's recipe (mace_recipe: lr_factor, scheduler_patience, ema_decay, stage_two, "
           "start_stage_two, stage_two_lr, stage_two_lr_factor; repeatable)")
    a("--schedule", choices=["constant", "cosine", "warmup", "warmup_cosine"], help="learning-rate schedule")
    a("--warmup-steps", type=int, help="linear warm-up length in steps")
    a("--weight-decay", "--weight_decay", dest="weight_decay", type=float,
      help="weight decay (decoupled for adamw; unset: the optimizer's own default)")
    a("--clip-grad", "--clip_grad", dest="clip_grad", type=float, help="max gradient norm (0 disables)")
    a("--ema", nargs="?", const=True, type=_ema, metavar="DECAY",
      help="EMA of the weights, evaluated and saved; a bare --ema uses decay 0.99 (MACE's default) or --ema_decay (default: off)")
    a("--ema_decay", dest="ema_decay", type=float, help="EMA decay per step (MACE's name; 0 disables)")
    a("--valid-fraction", "--valid_fraction", dest="valid_fraction", type=float,
      help="fraction of --train held out for validation when there is no --valid")
    a("--patience", type=int, help="early stopping after this many evaluations without a better validation loss")
    a("--eval-every", type=int, help="validation every this many steps")
    a("--checkpoint-every", type=int, help="checkpoints/last.pt every this many steps")
    a("--e0", "--E0s", dest="e0", metavar="MODE|MAPPING|FILE",
      help="per-element reference energies (eV): refit, keep, average, isolated (config_type=IsolatedAtom frames), "
           "H=-13.6,O=-2035.6, MACE's '{1: -13.6, 8: -2035.6}' or a JSON file")
    a("--refine", choices=["lbfgs"], help="second-order refinement stage after first-order training")
    a("--refine-steps", type=int, help="L-BFGS iterations of the refinement")
    a("--strategy", help="what is trained: full, freeze:GROUP[,GROUP], lora:RANK, replay:FRACTION, joined by +")
    a("--lr-factors", "--lr_factors", dest="lr_factors", type=lr_factors, metavar="GROUP=FACTOR,...",
      help="per-group LR factors (lr = --lr x factor), e.g. embedding=0.1,readout=2; replaces the YAML's")
    a("--list-groups", action="store_true", help="print the parameter groups of --model and exit (no --train needed)")
    a("--device", help="torch device: cpu, cuda, cuda:1, ...")
    a("--out", help="run directory")
    p.argument_default = None  # options added later (by other modules) keep argparse's usual None default


def finetune_overrides(args: argparse.Namespace) -> dict:
    """The flags given, by config field or MACE name (FinetuneConfig.from_sources maps the latter)."""
    from optbench.config import FinetuneConfig
    from optbench.mace_config import MAPPED

    known = set(FinetuneConfig.model_fields) | set(MAPPED)
    out = {k: v for k, v in vars(args).items() if k in known and k != "config"}
    if "tests" in out:
        out["tests"] = dict(out["tests"])
    if "recipe" in out:
        import yaml

        out["recipe"] = {k: yaml.safe_load(v) for k, v in out["recipe"]}  # numbers, true/false, null as in YAML
    return out


def named_keys(args) -> set[str]:
    """Label kinds whose key the user named on the command line (they must exist in the data)."""
    return {k for k in ("energy", "forces", "stress", "virial") if getattr(args, f"{k}_key", None) is not None}


def leaf_parsers(sub) -> list[argparse.ArgumentParser]:
    """The parsers of every command (`data generate`, not `data`)."""
    out = []
    for parser in sub.choices.values():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        out += leaf_parsers(nested[0]) if nested else [parser]
    return out
