"""Remove and mislabel change exactly the chosen training indices, without copying images."""
from __future__ import annotations

import numpy as np
import torch

from brittle.counterfactual.tasks import Mislabel, Remove, flip_classes


def test_remove_drops_exactly_the_prefix():
    labels = torch.arange(50) % 10
    prefix = np.array([3, 17, 42, 0])
    keep, new_labels = Remove().apply(labels, prefix)
    assert new_labels is labels  # no label copy
    assert set(keep.tolist()) == set(range(50)) - set(prefix.tolist())
    assert keep.dtype == torch.long and len(keep) == 46


def test_mislabel_relabels_exactly_the_prefix():
    labels = torch.arange(50) % 10
    before = labels.clone()
    prefix = np.array([5, 15, 25])
    keep, new_labels = Mislabel().apply(labels, prefix, flip_class=3)
    assert torch.equal(labels, before)  # the shared label tensor is untouched
    assert torch.equal(keep, torch.arange(50))
    changed = (new_labels != before).nonzero().squeeze(1).tolist()
    assert changed == [5, 15, 25] and (new_labels[prefix] == 3).all()


def test_empty_prefix_is_identity():
    labels = torch.arange(20) % 4
    keep, new = Mislabel().apply(labels, np.array([], dtype=np.int64), flip_class=1)
    assert new is labels and len(keep) == 20
    keep, new = Remove().apply(labels, np.array([], dtype=np.int64))
    assert len(keep) == 20


def test_flip_class_is_second_most_likely_or_first_when_second_is_true():
    probs = np.array([[0.7, 0.2, 0.1],   # label 0 -> second is 1
                      [0.5, 0.4, 0.1],   # label 1 (misclassified) -> second is the label -> take 0
                      [0.1, 0.3, 0.6]])  # label 2 -> 1
    assert flip_classes(probs, np.array([0, 1, 2])).tolist() == [1, 0, 1]


def test_flip_class_is_second_by_average_rank_not_by_mean_softmax():
    """The reference code's rule: mean softmax says class 1 (0.297 vs 0.203), but class 2 ranks
    second in two of three models (average rank 1.33 vs 1.67), so the flip class is 2."""
    probs = np.array([[[0.50, 0.49, 0.01]], [[0.50, 0.20, 0.30]],
                      [[0.50, 0.20, 0.30]]])  # [R=3, T=1, C=3]
    assert np.argsort(-probs.mean(0), axis=1)[0, 1] == 1
    assert flip_classes(probs, np.array([0])).tolist() == [2]
    # the fallback: the true label ranks second on average -> the first class
    assert flip_classes(probs, np.array([2])).tolist() == [0]
