"""Rankings: the order in which a search modifies a target's training images, most influential
first. A scorer's scores [T, N] become a top-k matrix here (the pipeline's score stage, the Python
API, and `find_supports` for scores a user brings)."""
from __future__ import annotations

import numpy as np


def rank_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k matrix int64 [T, k] of scores [T, N]: highest first, ties in index order."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)
