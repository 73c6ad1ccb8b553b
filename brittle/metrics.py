"""Support-size metrics: the CDF over targets on [0, K] and its normalised area (AUC).

NOT_FOUND targets never count as found but stay in the denominator, so a method that flips
fewer targets has a lower curve. AUC = (1/K) * integral_0^K CDF(k) dk, which for a step CDF is
the mean over targets of (K - support) / K, counting 0 for NOT_FOUND.
"""
from __future__ import annotations

import numpy as np


def support_cdf(supports: np.ndarray, max_support: int) -> list[tuple[int, float]]:
    """[(k, fraction of targets with 0 <= support <= k)] at 0, every found support size, and K."""
    s = np.asarray(supports)
    n = max(len(s), 1)
    found = np.sort(s[(s >= 0) & (s <= max_support)])
    points = sorted({0, int(max_support), *[int(v) for v in found]})
    return [(k, float((found <= k).sum() / n)) for k in points]


def support_auc(supports: np.ndarray, max_support: int) -> float:
    """Normalised area under the support CDF on [0, max_support]; 1 = every support is 0."""
    s = np.asarray(supports, dtype=np.float64)
    if len(s) == 0:
        return 0.0
    found = (s >= 0) & (s <= max_support)
    return float(np.where(found, (max_support - s) / max_support, 0.0).mean())


def sparsify_top(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the `fraction` largest-magnitude scores of each row of scores [T, N], zero the rest."""
    if fraction >= 1.0:
        return scores
    keep = max(1, int(round(fraction * scores.shape[1])))
    out = np.zeros_like(scores)
    idx = np.argpartition(-np.abs(scores), keep - 1, axis=1)[:, :keep]
    np.put_along_axis(out, idx, np.take_along_axis(scores, idx, axis=1), axis=1)
    return out


def lds(masks: np.ndarray, margins: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Linear Datamodeling Score per target: Spearman(margins[:, t], masks @ scores[t]).

    masks bool [m, N], margins [m, T] (the targets' margins), scores [T, N] -> float [T].
    """
    from scipy.stats import spearmanr

    predicted = masks.astype(np.float64) @ scores.T.astype(np.float64)  # [m, T]
    out = np.empty(scores.shape[0])
    for t in range(scores.shape[0]):
        out[t] = spearmanr(margins[:, t], predicted[:, t]).statistic
    return out


def median_support(supports: np.ndarray, max_support: int) -> float | str:
    """Median support over *all* targets, a target never flipped counting as larger than K.

    A number when at least half the targets flipped, else the string '>K': a method that flips
    2 of 10 targets cannot show a smaller median than one that flips all 10."""
    s = np.asarray(supports, dtype=np.float64)
    if len(s) == 0:
        return f">{int(max_support)}"
    censored = np.where((s >= 0) & (s <= max_support), s, np.inf)
    med = float(np.median(censored))  # inf as soon as the middle reaches an unflipped target
    return med if np.isfinite(med) else f">{int(max_support)}"


def fraction_flipped(supports: np.ndarray, max_support: int) -> float:
    s = np.asarray(supports)
    return float(((s >= 0) & (s <= max_support)).mean()) if len(s) else 0.0


def bootstrap_ci(values: np.ndarray, statistic, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
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
