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
