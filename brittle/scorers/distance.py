"""Nearest-neighbour scorers on backbone features: l2 and cosine distance, nearest first.

Affinity is minus the squared l2 distance, or minus the cosine distance (1 - cosine similarity);
the LDS magnitude is the inverse distance (the nearest the most influential), signed by label.
"""
from __future__ import annotations

import numpy as np

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import Scorer, TargetSet, check_pool, sign_rule
from brittle.scorers.magnitude import PAPER, check_magnitude


class Distance(Scorer):
    """Score = minus the `metric` distance ('l2' or 'cosine') between target and training image."""

    def __init__(self, metric: str = "l2", pool: str = "same_class",
                 lds_sparsity: float = 0.05, other_classes: str = "negative",
                 magnitude: str = PAPER):
        self.other_classes, self.magnitude = sign_rule(other_classes), check_magnitude(magnitude)
        if metric not in ("l2", "cosine"):
            raise BrittleError(f"scorer.metric={metric} is not valid; use l2 or cosine")
        self.metric, self.pool = metric, check_pool(pool)
        self.lds_sparsity = float(lds_sparsity)

    @property
    def method(self) -> str:  # type: ignore[override]
        return "L2" if self.metric == "l2" else "Cosine"

    def scores(self, targets: TargetSet) -> np.ndarray:
        x, q = np.asarray(self.train.features, np.float64), np.asarray(targets.features, np.float64)
        if self.metric == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            return q @ x.T - 1.0
        return -((q ** 2).sum(1)[:, None] - 2.0 * q @ x.T + (x ** 2).sum(1)[None, :])

    def attribution_distance(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        distance = super().attribution_distance(scores, targets)
        if self.metric == "l2":  # scores is minus the squared distance
            return np.sqrt(np.clip(distance, 0.0, None))
        return distance
