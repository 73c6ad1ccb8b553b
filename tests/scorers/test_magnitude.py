"""The readings of "inverse distance" (`scorer.magnitude`) against values worked by hand, and
through the ESVM and l2 scorers against scikit-learn's SVM and numpy's distances."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import TargetSet, TrainSet
from brittle.scorers.distance import Distance
from brittle.scorers.esvm.scorer import ExemplarSVM
from brittle.scorers.magnitude import MAGNITUDES, magnitude

# distances of five training images: beyond an ESVM's boundary, on it, near, far, unknown
DISTANCE = np.array([[-1.0, 0.0, 0.5, 2.0, np.inf]])
BY_HAND = {
    "inverse_clipped": [1000.0, 1000.0, 2.0, 0.5, 0.0],        # 1 / max(d, 1e-3)
    "inverse_bounded": [1 / 2, 1.0, 1 / 1.5, 1 / 3, 0.0],     # 1 / (|d| + 1)
    "rank": [5 / 5, 4 / 5, 3 / 5, 2 / 5, 0.0],                # (N + 1 - ascending rank) / N
}


@pytest.mark.parametrize("reading", MAGNITUDES)
def test_each_reading_matches_values_worked_by_hand(reading):
    np.testing.assert_allclose(magnitude(DISTANCE, reading)[0], BY_HAND[reading])


def test_rank_shares_tied_ranks_and_is_per_target():
    got = magnitude(np.array([[1.0, 1.0, 3.0], [3.0, 2.0, 1.0]]), "rank")
    np.testing.assert_allclose(got, [[2.5 / 3, 2.5 / 3, 1 / 3], [1 / 3, 2 / 3, 1.0]])


def test_a_bad_reading_is_one_clear_error():
    with pytest.raises(BrittleError, match=r"scorer.magnitude=inverse is not valid; use one of "
                                           r"\['inverse_clipped', 'inverse_bounded', 'rank'\]"):
        ExemplarSVM(magnitude="inverse")


def _problem():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    train = (rng.normal(0, 1, (120, 8)) + 2.0 * labels[:, None]).astype(np.float32)
    return train, labels, rng.normal(0, 1, (2, 8)).astype(np.float32)


@pytest.mark.parametrize("reading", MAGNITUDES)
def test_esvm_attributions_under_each_reading_follow_sklearns_decision(reading):
    """tau = sign rule x reading(-decision) with LinearSVC's decision on every training image."""
    from scipy.stats import rankdata
    from sklearn.svm import LinearSVC

    train, labels, queries = _problem()
    q = TargetSet(np.arange(2), np.zeros(2, np.int64), queries)
    scorer = ExemplarSVM(backend="torch", magnitude=reading)
    scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    tau = scorer.attributions(scorer.scores(q), q)
    pool = train[labels == 0]
    for t in range(2):
        clf = LinearSVC(C=0.1, class_weight="balanced", max_iter=100000, tol=1e-10)
        clf.fit(np.concatenate([queries[t:t + 1], pool]), np.r_[1, np.zeros(len(pool), np.int64)])
        d = -clf.decision_function(train.astype(np.float64))
        expected = {"inverse_clipped": 1 / np.maximum(d, 1e-3),
                    "inverse_bounded": 1 / (np.abs(d) + 1),
                    "rank": (len(d) + 1 - rankdata(d)) / len(d)}[reading]
        sign = np.where(labels == 0, 1.0, -1.0)
        np.testing.assert_allclose(tau[t], sign * expected, rtol=2e-3, atol=1e-6)


def test_l2_readings_measure_the_euclidean_distance():
    train, labels, queries = _problem()
    q = TargetSet(np.arange(1), np.zeros(1, np.int64), queries[:1])
    dist = np.linalg.norm(train.astype(np.float64) - queries[0], axis=1)
    for reading, expected in (("inverse_clipped", 1 / dist), ("inverse_bounded", 1 / (dist + 1))):
        scorer = Distance("l2", magnitude=reading)
        scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
        got = scorer.attributions(scorer.scores(q), q)[0]
        np.testing.assert_allclose(np.abs(got), expected, rtol=1e-4)
