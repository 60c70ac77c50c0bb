"""Human names with units for the raw keys of results.csv (`final.id.forces_mae`,
`property.Si.eos.B0_GPa.error`, `ID:test_id:forces_mae`, ...): one home for how a column reads."""

from __future__ import annotations

# suffix of a key -> unit, longest first so that `_meV_atom` wins over `_atom`
UNIT_SUFFIXES = (
    ("_meV_per_atom", "meV/atom"), ("_meV_atom", "meV/atom"), ("_meV_A", "meV/Å"), ("_A2_ps", "Å²/ps"),
    ("_g_cm3", "g/cm³"), ("_GPa", "GPa"), ("_THz", "THz"), ("_cm1", "cm⁻¹"), ("_A3", "Å³"), ("_eV", "eV"),
    ("_K", "K"), ("_ps", "ps"), ("_fs", "fs"), ("_pct", "%"), ("_s", "s"), ("_A", "Å"),
)
METRICS = {
    "forces_mae": ("force MAE", "meV/Å"), "forces_rmse": ("force RMSE", "meV/Å"), "forces_cos": ("force cosine", ""),
    "energy_mae": ("energy MAE", "meV/atom"), "energy_rmse": ("energy RMSE", "meV/atom"),
    "stress_mae": ("stress MAE", "GPa"), "stress_rmse": ("stress RMSE", "GPa"), "n_structures": ("structures", ""),
    "wall_time_s": ("wall time", "s"), "steps": ("steps", ""), "lr": ("learning rate", ""),
}
STAGES = {"zero_shot": "pretrained", "final": "fine-tuned", "refined": "+ L-BFGS"}
PROPERTY_PARTS = {"model": "model", "reference": "reference", "error": "error", "abs": "|error|", "abs_error": "|error|",
                  "rel": "relative error", "rel_error": "relative error"}
RELATIVE = ("rel", "rel_error")


def split_unit(name: str) -> tuple[str, str]:
    """('B0', 'GPa') from 'B0_GPa'; (name, '') when the name carries no unit."""
    for suffix, unit in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], unit
    return name, ""


def unit_of(key: str) -> str:
    """Unit of a raw column key ('' when dimensionless or unknown)."""
    parts = key.replace(":", ".").split(".")
    if parts[-1] in METRICS:
        return METRICS[parts[-1]][1]
    if parts[-1] in PROPERTY_PARTS and len(parts) > 1:
        return "" if parts[-1] in RELATIVE else split_unit(parts[-2])[1]
    return split_unit(parts[-1])[1]


def _with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def human(key: str) -> str:
    """A column name a reader understands, with its unit."""
    if ":" in key:  # summary keys: TAG:set:metric
        tag, name, metric = key.split(":", 2)
        label, unit = METRICS.get(metric, split_unit(metric))
        return _with_unit(f"{name} ({tag}) {label}", unit)
    parts = key.split(".")
    if parts[0] in STAGES and len(parts) == 3:
        label, unit = METRICS.get(parts[2], split_unit(parts[2]))
        return _with_unit(f"{parts[1]} {label}, {STAGES[parts[0]]}", unit)
    if parts[0] == "property" and len(parts) >= 4:
        struct, prop, rest = parts[1], parts[2], parts[3:]
        part = PROPERTY_PARTS.get(rest[-1]) if len(rest) > 1 else None
        quantity = rest[-2] if part else rest[-1]
        label, unit = split_unit(quantity)
        label, unit = label.replace("_", " "), "" if rest[-1] in RELATIVE else unit
        return _with_unit(f"{struct} {prop} {label}" + (f" {part}" if part else ""), unit)
    if len(parts) == 1 and key in METRICS:
        return _with_unit(*METRICS[key])
    label, unit = split_unit(parts[-1])
    return _with_unit(" ".join([*parts[:-1], label]).replace("_", " "), unit)


FULL_STRATEGY = "full"  # a trial row without a `strategy` column trained every parameter


def strategy_of(row: dict) -> str:
    """The canonical strategy string of a trial row ('full' where the row has none)."""
    return row.get("strategy") or FULL_STRATEGY


def arm_label(optimizer: str, strategy: str) -> str:
    """How an (optimizer, strategy) pair reads in tables, figures and sentences: 'adamw / freeze:embedding'."""
    return f"{optimizer} / {strategy}"
