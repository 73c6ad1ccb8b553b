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
    # handed unsigned distances; negative ones never come from a scorer (clipped as the first)
    "inverse_unsigned": [1000.0, 1000.0, 2.0, 0.5, 0.0],
}


@pytest.mark.parametrize("reading", MAGNITUDES)
def test_each_reading_matches_values_worked_by_hand(reading):
    np.testing.assert_allclose(magnitude(DISTANCE, reading)[0], BY_HAND[reading])


def test_rank_shares_tied_ranks_and_is_per_target():
    got = magnitude(np.array([[1.0, 1.0, 3.0], [3.0, 2.0, 1.0]]), "rank")
    np.testing.assert_allclose(got, [[2.5 / 3, 2.5 / 3, 1 / 3], [1 / 3, 2 / 3, 1.0]])


def test_a_bad_reading_is_one_clear_error():
    with pytest.raises(BrittleError, match=r"scorer.magnitude=inverse is not valid; use one of "
                                           r"\['inverse_clipped', 'inverse_bounded', 'rank', "
                                           r"'inverse_unsigned'\]"):
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
        geometric = np.abs(d) / np.linalg.norm(clf.coef_)
        expected = {"inverse_clipped": 1 / np.maximum(d, 1e-3),
                    "inverse_bounded": 1 / (np.abs(d) + 1),
                    "rank": (len(d) + 1 - rankdata(d)) / len(d),
                    "inverse_unsigned": 1 / np.maximum(geometric, 1e-3)}[reading]
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


def test_the_unsigned_literal_reading_worked_by_hand():
    """A hyperplane w = (3, 4), b = -5 (||w|| = 5) and three training images: (1, 1) at decision
    2, on the target's side, 0.4 from the hyperplane; (0, 0) at decision -5, 1 away; (1, 0.5)
    at decision 0, on it. 1 / distance: 2.5, 1 and the clip's 1,000, signed by class."""
    scorer = ExemplarSVM(magnitude="inverse_unsigned")
    scorer.prepare(TrainSet(np.array([0, 1, 0]), np.zeros((3, 2), np.float32)), None,
                   torch.device("cpu"))
    target = TargetSet(np.array([7]), np.array([0]), np.zeros((1, 2), np.float32))
    points = np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.5]])
    decision = points @ np.array([3.0, 4.0]) - 5.0
    scorer._norms[7] = 5.0    # the ranking SVM's ||w||, as scores() records it
    tau = scorer.attributions(decision[None, :], target)[0]
    np.testing.assert_allclose(tau, [2.5, -1.0, 1000.0])
    # the geometric distance: from each point to its projection onto the hyperplane
    w, b = np.array([3.0, 4.0]), -5.0
    projected = points - ((points @ w + b) / (w @ w))[:, None] * w
    np.testing.assert_allclose(np.linalg.norm(points - projected, axis=1), [0.4, 1.0, 0.0])


def test_lds_negatives_all_trains_the_lds_svm_against_every_image():
    """lds_negatives=all: the magnitudes come from LinearSVC with every training image negative
    (section 3), the ranking from the one against the pool (appendix A.4)."""
    from sklearn.svm import LinearSVC

    train, labels, queries = _problem()
    q = TargetSet(np.arange(1), np.zeros(1, np.int64), queries[:1])
    scorer = ExemplarSVM(backend="sklearn", lds_negatives="all", tol=1e-10, max_iter=100000)
    scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    scores = scorer.scores(q)
    tau = scorer.attributions(scores, q)[0]
    clf = LinearSVC(C=0.1, class_weight="balanced", max_iter=100000, tol=1e-10, random_state=0)
    clf.fit(np.concatenate([queries[:1], train]), np.r_[1, np.zeros(len(train), np.int64)])
    d = -clf.decision_function(train.astype(np.float64))
    np.testing.assert_allclose(tau, np.where(labels == 0, 1.0, -1.0) / np.maximum(d, 1e-3),
                               rtol=1e-6)
    assert not np.allclose(scores[0], -d)   # the ranking's SVM is another one
    with pytest.raises(BrittleError, match="scorer.lds_negatives=some is not valid"):
        ExemplarSVM(lds_negatives="some")
