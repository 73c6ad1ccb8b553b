"""Support-size metrics: the CDF over targets on [0, K] and its normalised area (AUC), the
median, the fraction flipped, a run's headline of them with 95% bootstrap intervals over targets,
and the record of the checks of the supports found (search.verify, search.refine_budget).

NOT_FOUND targets never count as found but stay in the denominator, so a method that flips
fewer targets has a lower curve. AUC = (1/K) * integral_0^K CDF(k) dk, which for a step CDF is
the mean over targets of (K - support) / K, counting 0 for NOT_FOUND.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from brittle.counterfactual.searches import NOT_FOUND
from brittle.eval.stats import bootstrap_ci


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


def headline(supports: np.ndarray, max_support: int) -> dict[str, Any]:
    """AUC, fraction flipped (each with a 95% bootstrap CI over targets) and the median."""
    s = np.asarray(supports)
    return {
        "auc": support_auc(s, max_support),
        "auc_ci": list(bootstrap_ci(s, lambda x: support_auc(x, max_support))),
        "n_targets": int(len(s)),
        "n_flipped": int(((s >= 0) & (s <= max_support)).sum()),
        "fraction_flipped": fraction_flipped(s, max_support),
        "fraction_flipped_ci": list(bootstrap_ci(s, lambda x: fraction_flipped(x, max_support))),
        "median_support": median_support(s, max_support),
        "max_support": int(max_support),
    }


def checks_record(support: pd.DataFrame, max_support: int) -> dict[str, Any] | None:
    """With checks (support.parquet's `holds` column): how many found supports hold on fresh
    models, the headline and CDF of the verified supports (one that does not hold counts as not
    found) and of the refined ones, and over the targets whose support holds the median prefix
    and refined sizes; None without checks."""
    if "holds" not in support.columns:
        return None
    found = support["support"].to_numpy() >= 0
    holds = support["holds"].to_numpy(bool)
    verified = np.where(holds, support["support"], NOT_FOUND)
    refined = np.where(holds, support["refined_support"], NOT_FOUND)
    record: dict[str, Any] = {"n_found": int(found.sum()), "n_hold": int(holds.sum()),
                              "check_models": int(support["check_models"].sum())}
    for name, values in (("verified", verified), ("refined", refined)):
        record[name] = {**headline(values, max_support),
                        "cdf": [[k, f] for k, f in support_cdf(values, max_support)]}
    if holds.any():
        record["median_prefix_of_held"] = float(np.median(support["support"][holds]))
        record["median_refined_of_held"] = float(np.median(support["refined_support"][holds]))
    return record
