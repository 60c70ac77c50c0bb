"""Statistics of MD samples: centre-of-mass removal, the MSD, block averages with their standard
error, and the diffusion coefficient fitted over a window of lags (with its error over atoms)."""

from __future__ import annotations

import numpy as np


def remove_com(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Positions (T, N, 3) relative to each frame's centre of mass."""
    com = (positions * masses[None, :, None]).sum(axis=1) / masses.sum()
    return positions - com[:, None, :]


def msd_curve(times_fs: np.ndarray, positions: np.ndarray, dims=(0, 1, 2),
              max_lag_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Mean-squared displacement (Å^2) against lag time (fs) of unwrapped `positions` (T, N, 3),
    averaged over time origins and atoms, over the coordinates `dims`."""
    if len(positions) < 3 or positions.shape[1] == 0:
        return np.zeros(0), np.zeros(0)
    rel = positions[:, :, list(dims)]
    n_lag = max(2, int(len(rel) * max_lag_fraction))
    lags = np.arange(n_lag)
    msd = np.array([0.0] + [float(((rel[k:] - rel[:-k]) ** 2).sum(axis=2).mean()) for k in lags[1:]])
    dt = times_fs[1] - times_fs[0]
    return lags * dt, msd


def block_average(x, n_blocks: int = 5) -> tuple[float | None, float | None]:
    """(mean, standard error) of a correlated series from `n_blocks` contiguous block means:
    error = std(block means, ddof=1) / sqrt(n_blocks). Blocks much longer than the correlation time
    make the block means independent. (None, None) for an empty series; error None below
    2 samples per block."""
    x = np.asarray([v for v in x if v is not None], float)
    if len(x) == 0:
        return None, None
    if len(x) < 2 * n_blocks or n_blocks < 2:
        return float(x.mean()), None
    blocks = np.array_split(x, n_blocks)
    means = np.array([b.mean() for b in blocks])
    return float(x.mean()), float(means.std(ddof=1) / np.sqrt(n_blocks))


DIFFUSIVE_EXPONENT = (0.7, 1.3)  # accepted log-log slope of the MSD over the fitted lags (1 = diffusive)


def diffusion_fit(times_fs: np.ndarray, positions: np.ndarray, dims=(0, 1, 2), *, min_lag_fs: float,
                  window_fs: float) -> dict:
    """Einstein diffusion coefficient from the MSD of unwrapped `positions` (T, N, 3) over lags
    [`min_lag_fs`, `min_lag_fs` + `window_fs`], which must span at most half the run.

    Returns {"D_A2_per_ps", "err_A2_per_ps" (std of the per-atom fits / sqrt(N): atoms as blocks),
    "reason" (why D is None), "fit_lags_fs", "msd_exponent" (log-log slope over the window)}.
    D is None when the run is shorter than 2 x the largest lag, or the MSD is not diffusive there
    (exponent outside DIFFUSIVE_EXPONENT)."""
    a, b = min_lag_fs, min_lag_fs + window_fs
    out = {"D_A2_per_ps": None, "err_A2_per_ps": None, "reason": None, "fit_lags_fs": [a, b], "msd_exponent": None}
    run = float(times_fs[-1] - times_fs[0]) if len(times_fs) > 1 else 0.0
    if run < 2 * b or positions.shape[1] == 0:
        out["reason"] = (f"run {run / 1000:.2f} ps < 2 x {b / 1000:.2f} ps (MSD fitted over lags "
                         f"{a / 1000:.2f}-{b / 1000:.2f} ps)") if positions.shape[1] else "no atoms to follow"
        return out
    dt = float(times_fs[1] - times_fs[0])
    ks = np.arange(max(1, int(round(a / dt))), int(round(b / dt)) + 1)
    rel = positions[:, :, list(dims)]
    per_atom = np.array([((rel[k:] - rel[:-k]) ** 2).sum(axis=2).mean(axis=0) for k in ks])  # (K, N) Å^2
    lag = ks * dt
    slopes = np.polyfit(lag, per_atom, 1)[0]  # Å^2/fs per atom
    d_atoms = slopes / (2 * len(dims)) * 1000.0  # Å^2/ps
    msd = per_atom.mean(axis=1)
    alpha = float(np.polyfit(np.log(lag), np.log(np.maximum(msd, 1e-300)), 1)[0])
    out["msd_exponent"] = alpha
    if not DIFFUSIVE_EXPONENT[0] <= alpha <= DIFFUSIVE_EXPONENT[1]:
        out["reason"] = (f"MSD not diffusive over lags {a / 1000:.2f}-{b / 1000:.2f} ps "
                         f"(log-log slope {alpha:.2f}, 1 expected)")
        return out
    out["D_A2_per_ps"] = float(d_atoms.mean())
    out["err_A2_per_ps"] = float(d_atoms.std(ddof=1) / np.sqrt(len(d_atoms))) if len(d_atoms) > 1 else None
    return out
