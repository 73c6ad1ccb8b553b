"""What every scorer shares: the candidate pool of a target and the score-matrix contract.

A scorer's `scores(train [N, D], train_labels [N], queries [T, D], query_labels [T],
query_ids [T])` returns float [T, N]: higher = more positive influence on the target, -inf for
training images outside the target's pool (other classes, when label-conditioned). The top-k
matrix int64 [T, k] is each row's k best indices, best first (ties keep index order).
Model-based scorers also have `prepare(ctx)`, called once before scoring.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from brittle.errors import BrittleError


@dataclass
class ScoreContext:
    """What model-based scorers may use in `prepare`: the config, the data, the retraining
    engine (to train the models they need), the stage cache, and a scratch directory."""
    cfg: Any
    data: Any
    engine: Any
    cache: Any
    work_dir: Path


class Scorer(Protocol):
    label_conditioning: bool

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray: ...


def candidate_pool(train_labels: np.ndarray, label: int, conditioned: bool) -> np.ndarray:
    """Training indices a target may be attributed to: its class only ("sign estimation")."""
    if conditioned:
        return np.flatnonzero(train_labels == label)
    return np.arange(len(train_labels))


def restrict_to_pools(scores: np.ndarray, train_labels: np.ndarray, query_labels: np.ndarray,
                      conditioned: bool) -> np.ndarray:
    """scores [T, N] with -inf outside each target's pool (in place, also returned)."""
    scores = np.asarray(scores, dtype=np.float64)
    if conditioned:
        scores[train_labels[None, :] != np.asarray(query_labels)[:, None]] = -np.inf
    return scores


def rank_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k matrix int64 [T, k] of scores [T, N]: highest first, ties in index order."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)


def check_pool_sizes(train_labels: np.ndarray, query_labels: np.ndarray, k: int,
                     conditioned: bool) -> None:
    """max_support must fit in every target's pool, else the ranking cannot be that long."""
    for label in np.unique(query_labels):
        size = len(candidate_pool(train_labels, int(label), conditioned))
        if k > size:
            raise BrittleError(
                f"search.max_support={k} is larger than class {int(label)}'s {size} training "
                f"images; use search.max_support <= {size}")


def validate_features(name: str, feats: np.ndarray, chunk: int = 8192) -> None:
    """Refuse NaN/inf features; reads in chunks so memory-mapped embeddings stay on disk."""
    bad = sum(int((~np.isfinite(np.asarray(feats[i:i + chunk]))).any(axis=1).sum())
              for i in range(0, len(feats), chunk))
    if bad:
        raise BrittleError(f"{name} features contain NaN or inf in {bad} rows; re-embed or "
                           f"retrain the backbone (its pretraining may have diverged)")


def rank(scorer: Any, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
         query_labels: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    """Convenience: the top-k matrix of a scorer in one call."""
    return rank_from_scores(scorer.scores(train, train_labels, queries, query_labels, query_ids), k)
