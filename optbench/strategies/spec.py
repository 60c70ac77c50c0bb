"""The strategy string: parts joined by '+', each `name[:argument]`.

- `full`: train every parameter (the default, today's behaviour);
- `freeze:G1,G2`: the named parameter groups of the backbone keep their pretrained values;
- `lora:RANK`: low-rank adapters of rank RANK on the backbone's linear layers, the rest frozen;
- `replay:FRACTION`: that fraction of every batch comes from a replay set labelled by the
  pretrained model (pseudo-labels) or from a user's labelled file.

Per-group learning-rate factors are not part of the string: `lr_factors: {embedding: 0.1}`.
"""

from __future__ import annotations

from dataclasses import dataclass

from optbench.errors import InputError

KINDS = ("full", "freeze", "lora", "replay")


@dataclass(frozen=True)
class Strategy:
    """One fine-tuning strategy; `str(s)` gives back its canonical string."""

    freeze: tuple[str, ...] = ()  # parameter groups kept at their pretrained values (sorted)
    lora_rank: int | None = None  # rank of the low-rank adapters (None: no LoRA)
    replay_fraction: float | None = None  # fraction of each batch drawn from the replay set

    @property
    def is_full(self) -> bool:
        return self == FULL

    @classmethod
    def parse(cls, text: str | Strategy, field: str = "strategy") -> Strategy:
        """A strategy from its string; a bad string raises InputError naming `field`."""
        if isinstance(text, Strategy):
            return text
        freeze: list[str] = []
        rank, fraction = None, None
        parts = [p.strip() for p in str(text).split("+") if p.strip()]
        if not parts:
            raise InputError(f"empty strategy (choose from {', '.join(KINDS)})", field=field)
        for part in parts:
            name, _, arg = part.partition(":")
            name = name.strip().lower()
            if name == "full":
                if arg:
                    raise InputError("'full' takes no argument", field=field)
            elif name == "freeze":
                groups = [g.strip() for g in arg.split(",") if g.strip()]
                if not groups:
                    raise InputError("freeze needs parameter groups: freeze:GROUP[,GROUP...] "
                                     "(`optbench finetune --list-groups --model M` lists them)", field=field)
                freeze += [g for g in groups if g not in freeze]
            elif name == "lora":
                try:
                    rank = int(arg)
                except ValueError:
                    raise InputError(f"lora needs an integer rank, got '{arg}' (lora:8)", field=field) from None
                if rank < 1:
                    raise InputError(f"lora rank must be >= 1, got {rank}", field=field)
            elif name == "replay":
                try:
                    fraction = float(arg)
                except ValueError:
                    raise InputError(f"replay needs a fraction, got '{arg}' (replay:0.2)", field=field) from None
                if not 0 < fraction < 1:
                    raise InputError(f"replay fraction must be in (0, 1), got {fraction}", field=field)
            else:
                raise InputError(f"unknown strategy '{name}' (choose from {', '.join(KINDS)})", field=field)
        if rank is not None and freeze:
            raise InputError("lora already freezes every base weight; drop freeze", field=field)
        return cls(tuple(sorted(freeze)), rank, fraction)  # one run whatever the order the groups are named in

    def __str__(self) -> str:
        parts = []
        if self.freeze:
            parts.append("freeze:" + ",".join(self.freeze))
        if self.lora_rank is not None:
            parts.append(f"lora:{self.lora_rank}")
        if self.replay_fraction is not None:
            parts.append(f"replay:{self.replay_fraction:g}")
        return "+".join(parts) or "full"


FULL = Strategy()
