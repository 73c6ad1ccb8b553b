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
