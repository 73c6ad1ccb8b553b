"""What every scorer shares: the candidate pool of a target and the ranking contract.

A scorer is called as `scorer.rank(train [N, D], train_labels [N], queries [T, D],
query_labels [T], query_ids [T], k)` and returns the top-k matrix int64 [T, k]: per target, k
distinct training indices, most influential first (same class as the target when conditioned).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from brittle.errors import BrittleError


class Scorer(Protocol):
    label_conditioning: bool

    def rank(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
             query_labels: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray: ...


def candidate_pool(train_labels: np.ndarray, label: int, conditioned: bool) -> np.ndarray:
    """Training indices a target may be attributed to: its class only ("sign estimation")."""
    if conditioned:
        return np.flatnonzero(train_labels == label)
    return np.arange(len(train_labels))


def check_pool_sizes(train_labels: np.ndarray, query_labels: np.ndarray, k: int,
                     conditioned: bool) -> None:
    """max_support must fit in every target's pool, else the ranking cannot be that long."""
    for label in np.unique(query_labels):
        size = len(candidate_pool(train_labels, int(label), conditioned))
        if k > size:
            raise BrittleError(
                f"search.max_support={k} is larger than class {int(label)}'s {size} training "
                f"images; use search.max_support <= {size}")


def top_of(pool: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The k pool indices with the highest scores, highest first (ties keep pool order)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return pool[order].astype(np.int64)


def validate_features(name: str, feats: np.ndarray) -> None:
    if not np.isfinite(feats).all():
        bad = int((~np.isfinite(feats)).any(axis=1).sum())
        raise BrittleError(f"{name} features contain NaN or inf in {bad} rows; re-embed or "
                           f"retrain the backbone (its pretraining may have diverged)")
