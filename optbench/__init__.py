"""optbench: which optimizer to fine-tune an atomistic foundation model with."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["finetune", "load_calculator", "evaluate_model", "__version__"]


def __getattr__(name: str):
    # Lazy: `import optbench` stays cheap; torch and the backbones load on first use.
    if name == "finetune":
        from optbench.train import finetune

        return finetune
    if name == "load_calculator":
        from optbench.backbones import load_calculator

        return load_calculator
    if name == "evaluate_model":
        from optbench.evaluate import evaluate_model

        return evaluate_model
    raise AttributeError(name)
