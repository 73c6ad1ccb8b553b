"""Random baseline: a seeded random order of the target's class (the paper's "random" curve)."""
from __future__ import annotations

import numpy as np

from brittle.scorers.base import candidate_pool


class RandomOrder:
    """A random permutation of the pool per target, seeded by (seed, test index)."""

    needs_features = False
    n_models = 0

    def __init__(self, seed: int = 0, label_conditioning: bool = True):
        self.seed, self.label_conditioning = int(seed), label_conditioning

    def rank(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
             query_labels: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
        out = np.empty((len(query_labels), k), dtype=np.int64)
        for t, (label, qid) in enumerate(zip(query_labels, query_ids)):
            pool = candidate_pool(train_labels, int(label), self.label_conditioning)
            rng = np.random.default_rng([self.seed, int(qid)])
            out[t] = rng.permutation(pool)[:k]
        return out
