"""Random baseline: a seeded random order of the target's class (the paper's "random" curve)."""
from __future__ import annotations

import numpy as np

from brittle.scorers.base import restrict_to_pools


class RandomOrder:
    """Random scores per target, seeded by (seed, test index): independent of the other targets."""

    needs_features = False
    n_models = 0

    def __init__(self, seed: int = 0, label_conditioning: bool = True):
        self.seed, self.label_conditioning = int(seed), label_conditioning

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        out = np.stack([np.random.default_rng([self.seed, int(q)]).random(len(train_labels))
                        for q in query_ids]) if len(query_ids) else np.zeros((0, len(train_labels)))
        return restrict_to_pools(out, train_labels, query_labels, self.label_conditioning)
