"""Statistics over targets: percentile bootstrap intervals (of a number, or pointwise of a curve
such as the support CDF), the paired sign test of two methods' supports, and the number of
targets a paired comparison needs (power analysis)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_ci(values: np.ndarray, statistic: Callable[[np.ndarray], float], n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(sample)` over resampled targets (rows of
    values [T] or [T, ...]); (nan, nan) with fewer than 2 targets."""
    values = np.asarray(values)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    stats = np.array([statistic(values[i]) for i in idx], dtype=np.float64)
    lo, hi = np.nanpercentile(stats, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_band(values: np.ndarray, curve: Callable[[np.ndarray], np.ndarray],
                   n_boot: int = 2000, level: float = 0.95,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise percentile bootstrap band (lo [P], hi [P]) of `curve(sample)` [P] over resampled
    targets (rows of values [T]): at each point, the interval bootstrap_ci gives that point."""
    values = np.asarray(values)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    curves = np.array([curve(values[i]) for i in idx], dtype=np.float64)
    lo, hi = np.percentile(curves, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    return lo, hi


def paired_sign_test(a: np.ndarray, b: np.ndarray, max_support: int) -> dict[str, float]:
    """Per-target comparison of two methods' supports a [T], b [T] (same targets; not found
    counts as larger than K): counts of smaller / equal / larger for `a`, and the two-sided
    sign-test p-value over the targets where they differ."""
    from scipy.stats import binomtest

    def censor(s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, dtype=np.float64)
        return np.where((s >= 0) & (s <= max_support), s, np.inf)

    ca, cb = censor(a), censor(b)
    smaller, larger = int((ca < cb).sum()), int((ca > cb).sum())
    equal = int(len(ca) - smaller - larger)
    p = binomtest(smaller, smaller + larger, 0.5).pvalue if smaller + larger else 1.0
    return {"smaller": smaller, "equal": equal, "larger": larger, "p_value": float(p)}


def targets_needed(a: np.ndarray, b: np.ndarray, difference: float, power: float = 0.8,
                   alpha: float = 0.05) -> int:
    """Targets a paired comparison needs to detect a mean difference `difference` in per-target
    values (e.g. each target's AUC term (K - support) / K) with the given power, two-sided level
    `alpha`: n = ((z_{1-alpha/2} + z_power) * sd(a - b) / difference)^2, the normal approximation,
    with the spread of the differences measured on targets a [T] and b [T] (same targets)."""
    from scipy.stats import norm

    sd = float(np.std(np.asarray(a, np.float64) - np.asarray(b, np.float64), ddof=1))
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return int(np.ceil((z * sd / difference) ** 2))
