"""Figures of a study (PNG), by family: training (summary, learning curves, error bars, profile,
refinement), properties (parity, phonons), curvature (Hessian spectra) and, in a study with
strategies, accuracy against forgetting; captions say how to read each."""

from __future__ import annotations

from pathlib import Path

from optbench.report.aggregate import StudyData
from optbench.report.figures.curvature import hessian_spectra
from optbench.report.figures.properties import phonon_bands, property_parity
from optbench.report.figures.strategies import accuracy_forgetting
from optbench.report.figures.training import (
    error_bars,
    learning_curves,
    performance_profile,
    refinement,
    summary,
)

__all__ = ["CAPTIONS", "accuracy_forgetting", "all_figures", "caption", "error_bars", "hessian_spectra", "learning_curves",
           "performance_profile", "phonon_bands", "property_parity", "refinement", "summary"]

CAPTIONS = {
    "summary": "Which optimizer, where: each panel is one dataset; optimizers (with the learning rate chosen on "
               "validation) are ranked by the force MAE on the first in-distribution test set, best at the top. Bars "
               "are seed means, whiskers 95% intervals; hatched bars had a diverged seed. Overlapping whiskers mean "
               "the ranking is not settled.",
    "learning_curves": "Training loss (left, log scale) and validation force MAE (right) against step for the first "
                       "seed of each optimizer at its selected learning rate. Lower is better; a curve that ends early "
                       "stopped early or diverged.",
    "force_errors": "Force MAE per optimizer on each test set (seed mean, whisker 95% interval), one panel per "
                    "dataset. Compare bars of one colour across optimizers; ID sets are in distribution, OOD sets not.",
    "performance_profile": "Performance profile: for each optimizer, the share of problems (dataset x test set) on "
                           "which its force MAE is within a factor τ of the best optimizer's. Higher and further left "
                           "is better; the value at τ = 1 is the share of problems it wins.",
    "refinement": "Force MAE before (first-order training) and after the L-BFGS refinement stage, per optimizer and "
                  "test set. A lower right bar means the refinement helped.",
    "property_parity": "Physical properties, one panel per quantity with its own axis and unit: model value against "
                       "the reference method's. Points on the dashed diagonal agree with the reference.",
    "hessian_spectra": "Extreme Hessian eigenvalues of the fine-tuning loss (Lanczos, absolute value, log scale) per "
                       "trial and checkpoint: blue the raw Hessian H, red the preconditioned P^1/2 H P^1/2 the "
                       "optimizer sees. A narrower red spread means better conditioning.",
    "accuracy_forgetting": "Accuracy against forgetting, one panel per dataset, one point per optimizer (colour) x "
                           "fine-tuning strategy (marker) at its selected learning rate: force MAE on the first ID "
                           "test set (x) against the RMS change of the forces on the built-in probe set from the "
                           "pretrained model's own predictions (y), seed means with 95% intervals both ways. Lower "
                           "and further left is better; ringed points joined by the dashed line form the Pareto "
                           "front (no other pair is better on both axes).",
    "phonons": "Phonon frequencies (THz) at the high-symmetry points: black bars the reference, dots each model. "
               "Dots on the bars agree with the reference; negative values are imaginary modes.",
}


def caption(path: Path) -> str:
    """What a figure of `all_figures` shows and how to read it."""
    stem = Path(path).stem
    return next((text for prefix, text in CAPTIONS.items() if stem == prefix or stem.startswith(prefix + "_")), stem)


def all_figures(data: StudyData, out: Path) -> list[Path]:
    """Every figure of the study, the summary first (then accuracy against forgetting, with strategies)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [p for p in (summary(data, out), accuracy_forgetting(data, out)) if p]
    paths += [*learning_curves(data, out), error_bars(data, out), performance_profile(data, out)]
    for fn in (refinement, property_parity, hessian_spectra):
        p = fn(data, out)
        if p:
            paths.append(p)
    paths.extend(phonon_bands(data, out))
    return paths
