"""Target selection: class-balanced, seeded test samples (optionally only correctly classified).

A misclassified target has support 0 and says nothing about an attribution method, so by default
(`targets.only_correct`) only samples the reference models classify correctly are eligible
(the mean reference softmax puts its maximum on the true label).
"""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from brittle.errors import BrittleError


def select_targets(cfg: DictConfig, test_labels: np.ndarray, mean_probs: np.ndarray) -> np.ndarray:
    """Sorted test indices int64 [T] of this shard (`targets.shard` of `targets.num_shards`)."""
    chosen = _all_targets(cfg, test_labels, mean_probs)
    shard, num = int(cfg.targets.get("shard", 0)), int(cfg.targets.get("num_shards", 1))
    if num < 1 or not 0 <= shard < num:
        raise BrittleError(f"targets.shard={shard} with targets.num_shards={num} is out of range; "
                           f"use num_shards >= 1 and 0 <= shard < num_shards")
    return chosen[shard::num]


def _all_targets(cfg: DictConfig, test_labels: np.ndarray, mean_probs: np.ndarray) -> np.ndarray:
    """Sorted test indices int64 [T]: `targets.indices` if given, else `targets.n` balanced picks."""
    tcfg = cfg.targets
    n_test = len(test_labels)
    eligible = np.ones(n_test, dtype=bool)
    if tcfg.only_correct:
        eligible = mean_probs.argmax(1) == test_labels
    if tcfg.get("indices") is not None:
        idx = np.asarray(list(tcfg.indices), dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n_test)]
        if len(bad):
            raise BrittleError(f"targets.indices contains {int(bad[0])}, outside the test set; "
                               f"valid indices are 0..{n_test - 1}")
        return idx
    n = int(tcfg.n)
    classes = np.unique(test_labels)
    if n < 1 or n > int(eligible.sum()):
        raise BrittleError(f"targets.n={n} is out of range; use 1..{int(eligible.sum())} "
                           f"(eligible test samples{' classified correctly' if tcfg.only_correct else ''})")
    rng = np.random.default_rng([int(tcfg.seed), 17])
    per_class = [rng.permutation(np.flatnonzero(eligible & (test_labels == c))) for c in classes]
    chosen: list[int] = []
    # round-robin over classes (in a seeded class order) keeps the selection balanced
    depth = 0
    class_order = rng.permutation(len(classes))
    while len(chosen) < n:
        for c in class_order:
            if depth < len(per_class[c]) and len(chosen) < n:
                chosen.append(int(per_class[c][depth]))
        depth += 1
    return np.sort(np.asarray(chosen, dtype=np.int64))
