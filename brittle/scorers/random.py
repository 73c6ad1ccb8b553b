"""Random baseline: a seeded random order of the target's class (the paper's "random" curve).

Its LDS attributions are the same random magnitudes, signed by label: what sign estimation alone
achieves without any similarity."""
from __future__ import annotations

import numpy as np

from brittle.scorers.base import Cost, Scorer, TargetSet, check_pool, sign_rule


class RandomOrder(Scorer):
    """Random scores per target, seeded by (seed, test index): independent of the other targets."""

    method = "Random"
    needs_features = False

    def __init__(self, seed: int = 0, pool: str = "same_class", lds_sparsity: float = 0.05,
                 other_classes: str = "negative"):
        self.other_classes = sign_rule(other_classes)
        self.seed, self.pool = int(seed), check_pool(pool)
        self.lds_sparsity = float(lds_sparsity)

    def scores(self, targets: TargetSet) -> np.ndarray:
        n = len(self.train.labels)
        if not len(targets.ids):
            return np.zeros((0, n))
        return np.stack([np.random.default_rng([self.seed, int(q)]).random(n) for q in targets.ids])

    def attribution_magnitude(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        return scores

    def cost(self) -> Cost:
        return Cost()
