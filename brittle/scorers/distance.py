"""Nearest-neighbour scorers on backbone features: l2 and cosine distance, nearest first."""
from __future__ import annotations

import numpy as np

from brittle.errors import BrittleError
from brittle.scorers.base import candidate_pool, top_of


class Distance:
    """Rank training images by increasing `metric` distance ('l2' or 'cosine') to the target."""

    def __init__(self, metric: str = "l2", label_conditioning: bool = True):
        if metric not in ("l2", "cosine"):
            raise BrittleError(f"scorer.metric={metric} is not valid; use l2 or cosine")
        self.metric, self.label_conditioning = metric, label_conditioning

    def rank(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
             query_labels: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
        train = train.astype(np.float64)
        if self.metric == "cosine":
            train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
        out = np.empty((len(queries), k), dtype=np.int64)
        for t, (q, label) in enumerate(zip(queries.astype(np.float64), query_labels)):
            pool = candidate_pool(train_labels, int(label), self.label_conditioning)
            if self.metric == "cosine":
                q = q / max(np.linalg.norm(q), 1e-12)
                dist = -(train[pool] @ q)
            else:
                dist = ((train[pool] - q) ** 2).sum(1)
            out[t] = top_of(pool, -dist, k)
        return out
