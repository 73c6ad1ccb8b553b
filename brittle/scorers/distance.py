"""Nearest-neighbour scorers on backbone features: l2 and cosine distance, nearest first."""
from __future__ import annotations

import numpy as np

from brittle.errors import BrittleError
from brittle.scorers.base import restrict_to_pools


class Distance:
    """Score = minus the `metric` distance ('l2' or 'cosine') between target and training image."""

    def __init__(self, metric: str = "l2", label_conditioning: bool = True):
        if metric not in ("l2", "cosine"):
            raise BrittleError(f"scorer.metric={metric} is not valid; use l2 or cosine")
        self.metric, self.label_conditioning = metric, label_conditioning

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        x, q = train.astype(np.float64), queries.astype(np.float64)
        if self.metric == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            neg_dist = q @ x.T - 1.0
        else:
            neg_dist = -((q ** 2).sum(1)[:, None] - 2.0 * q @ x.T + (x ** 2).sum(1)[None, :])
        return restrict_to_pools(neg_dist, train_labels, query_labels, self.label_conditioning)
