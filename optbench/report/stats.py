"""The statistics of the report: t intervals over seeds, paired t-tests, Holm's correction."""

from __future__ import annotations

import math

import numpy as np


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean and half-width of the t confidence interval (None with fewer than two values)."""
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": None, "ci": None, "n": 0}
    if v.size == 1:
        return {"mean": float(v[0]), "ci": None, "n": 1}
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return {"mean": float(v.mean()), "ci": float(half), "n": int(v.size)}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, kept monotone, capped at 1); None stays None."""
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * pvalues[i]))
        out[i] = running
    return out


def paired_test(a: dict, b: dict) -> dict:
    """Paired t-test of a - b over the keys (seeds) both have: mean difference, 95% CI, n, two-sided p."""
    from scipy import stats

    keys = [k for k in a if k in b and finite(a[k]) and finite(b[k])]
    diff = [a[k] - b[k] for k in keys]
    ci = mean_ci(diff)
    p = None
    if len(keys) >= 2 and np.std(diff) > 0:
        p = float(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
    return {"mean_diff": ci["mean"], "ci": ci["ci"], "n": ci["n"], "p_value": p}


def finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
