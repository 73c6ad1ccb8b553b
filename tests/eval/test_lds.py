"""LDS against dattri's published test vectors, and the sign convention of every similarity scorer:
attributions that rank the truly influential images first must get a high LDS."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brittle.eval.lds import lds, sparsify_top
from brittle.scorers.base import TargetSet, TrainSet
from brittle.scorers.distance import Distance
from brittle.scorers.esvm.scorer import ExemplarSVM
from brittle.scorers.random import RandomOrder


def test_lds_matches_dattri_test_vectors():
    # dattri test/dattri/metrics/test_lds.py: 2 targets, 4 training samples, 3 subsets of size 2
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.2, 0.1, 0.3, 0.4]])
    gt_values = np.array([[0.3, 0.3], [0.4, 0.4], [0.5, 0.3]])   # [subset, target] margins
    indices = [[0, 1], [0, 2], [1, 2]]
    masks = np.zeros((3, 4), dtype=bool)
    for j, idx in enumerate(indices):
        masks[j, idx] = True
    assert np.allclose(lds(masks, gt_values, scores), [1.0, 0.8660254037844387])


def _problem(seed: int = 0):
    """Two Gaussian classes in 16-d: 400 training images, 6 targets of class 0."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (2, 16))
    labels = np.repeat([0, 1], 200)
    train = centers[labels] + rng.normal(0, 1, (400, 16))
    queries = centers[0] + rng.normal(0, 1, (6, 16))
    return train.astype(np.float32), labels, queries.astype(np.float32)


def _truth(scores: np.ndarray, train_labels: np.ndarray, query_label: int) -> np.ndarray:
    """A linear datamodel whose influence follows the scorer's own ranking: the 20 images of the
    target's class it ranks first support the target (weight 1/sqrt(1 + rank)), the 20 nearest
    images of other classes oppose it (0.3 of that), the rest do not matter."""
    tau = np.zeros_like(scores)
    for sign, members in ((1.0, train_labels == query_label), (-0.3, train_labels != query_label)):
        idx = np.flatnonzero(members)
        order = idx[np.argsort(-scores[idx], kind="stable")][:20]
        tau[order] = sign / np.sqrt(1.0 + np.arange(len(order)))
    return tau


SCORERS = {"esvm": lambda: ExemplarSVM(backend="torch"),
           "esvm_sklearn": lambda: ExemplarSVM(backend="sklearn"), "l2": lambda: Distance("l2"),
           "cosine": lambda: Distance("cosine")}


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_signed_attributions_get_high_lds_where_raw_scores_do_not(name):
    train, labels, queries = _problem()
    scorer = SCORERS[name]()
    if name.startswith("esvm"):
        # an SVM fitted against class 0 alone puts many class-1 images on the target's side, where
        # the paper's rule gives them all the largest negative magnitude: this truth does not model
        # that, so the ESVM's own-class order is checked here with other classes left out (its
        # paper-rule values are checked against scikit-learn below, its LDS measured on digits)
        scorer.other_classes = "zero"
    scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    q = TargetSet(np.arange(len(queries)), np.zeros(len(queries), np.int64), queries)
    scores = scorer.scores(q)
    # other classes' influence in the truth follows l2 nearness (the ESVM's other classes
    # get 0 here)
    nearest = Distance("l2")
    nearest.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    own = labels[None, :] == 0
    scores_all = np.where(own, scores, nearest.scores(q) - 1e9)
    rng = np.random.default_rng(1)
    masks = rng.random((300, len(labels))) < 0.5
    truth = np.stack([_truth(a, labels, 0) for a in scores_all])
    margins = masks @ truth.T + 0.05 * rng.standard_normal((300, len(queries)))
    tau = sparsify_top(scorer.attributions(scores, q), scorer.lds_sparsity)
    assert lds(masks, margins, tau).mean() > 0.5
    # the old convention (raw scores of the search's ranking, other classes 0) fails this
    raw = np.where(np.isfinite(scorer.pool_scores(scores, q)), scorer.pool_scores(scores, q), 0.0)
    assert lds(masks, margins, sparsify_top(raw, scorer.lds_sparsity)).mean() < 0.5


def test_attribution_signs_follow_the_label_and_nearness():
    train, labels, queries = _problem()
    scorer = Distance("l2")
    scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    q = TargetSet(np.arange(1), np.zeros(1, np.int64), queries[:1])
    tau = scorer.attributions(scorer.scores(q), q)[0]
    assert (tau[labels == 0] > 0).all() and (tau[labels == 1] < 0).all()
    dist = np.linalg.norm(train - queries[0], axis=1)
    same = np.flatnonzero(labels == 0)
    assert same[np.argmax(tau[same])] == same[np.argmin(dist[same])]  # nearest = most influential
    assert np.allclose(tau[same], 1.0 / dist[same], rtol=1e-4)


def test_random_attributions_are_signed_by_label_only():
    labels = np.repeat([0, 1], 50)
    scorer = RandomOrder(seed=3)
    scorer.prepare(TrainSet(labels), None, torch.device("cpu"))
    q = TargetSet(np.array([7]), np.array([1]))
    tau = scorer.attributions(scorer.scores(q), q)[0]
    assert (tau[labels == 1] > 0).all() and (tau[labels == 0] < 0).all()


def test_esvm_attributions_follow_the_papers_sign_rule_on_every_training_image():
    """The target's SVM is a linear function on every training image: scikit-learn's LinearSVC
    fitted on [query; class-0 pool] gives the decision values, and the paper's sign estimation
    makes class 0 positive and class 1 negative, magnitude 1 / max(-decision, 1e-3) on both."""
    from sklearn.svm import LinearSVC

    train, labels, queries = _problem()
    q = TargetSet(np.arange(2), np.zeros(2, np.int64), queries[:2])
    scorer = ExemplarSVM(backend="torch")
    scorer.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    scores = scorer.scores(q)
    tau = scorer.attributions(scores, q)
    pool = train[labels == 0]
    for t in range(2):
        clf = LinearSVC(C=0.1, class_weight="balanced", loss="squared_hinge", max_iter=100000,
                        tol=1e-10)
        clf.fit(np.concatenate([queries[t:t + 1], pool]), np.r_[1, np.zeros(len(pool), np.int64)])
        expected = 1.0 / np.clip(-clf.decision_function(train.astype(np.float64)), 1e-3, None)
        expected[labels == 1] *= -1.0
        assert np.allclose(tau[t], expected, rtol=1e-3)
    assert (tau[:, labels == 1] < 0).all() and (tau[:, labels == 0] > 0).all()
    # the ranking still holds the target's class only
    assert np.isinf(scorer.pool_scores(scores, q)[:, labels == 1]).all()
    # ESVM and l2 follow one rule: both negative on the other class
    nearest = Distance("l2")
    nearest.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    assert (nearest.attributions(nearest.scores(q), q)[:, labels == 1] < 0).all()


@pytest.mark.parametrize("name", ["esvm", "l2", "cosine"])
def test_other_classes_zero_is_the_named_alternative(name):
    train, labels, queries = _problem()
    q = TargetSet(np.arange(2), np.zeros(2, np.int64), queries[:2])
    paper, zero = SCORERS[name](), SCORERS[name]()
    zero.other_classes = "zero"
    for s in (paper, zero):
        s.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    a = paper.scores(q)
    tau_paper, tau_zero = paper.attributions(a, q), zero.attributions(a, q)
    assert (tau_zero[:, labels == 1] == 0).all()
    assert np.array_equal(tau_zero[:, labels == 0], tau_paper[:, labels == 0])
    assert (zero.display_name("MoCo").endswith("(other classes 0)")
            and "others" not in paper.display_name("MoCo"))


def test_a_bad_sign_rule_is_one_clear_error():
    from brittle.runtime.errors import BrittleError
    with pytest.raises(BrittleError,
                       match=r"scorer.other_classes=opposite is not valid; use one of "
                             r"\['negative', 'zero'\]"):
        Distance("l2", other_classes="opposite")


def _bank(seed: int = 0, m: int = 40, n: int = 60, t: int = 5):
    """A bank of m equal-size half subsets of n images (3 classes) and margins [m, t] that follow
    each target's class count in the subset, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    masks = np.zeros((m, n), dtype=bool)
    for j in range(m):
        masks[j, rng.choice(n, n // 2, replace=False)] = True
    targets = rng.integers(0, 3, t)
    counts = np.stack([masks[:, labels == y].sum(1) for y in targets], axis=1)
    return masks, counts + 2.0 * rng.standard_normal((m, t)), labels, targets


def test_sign_alone_is_spearman_of_margins_and_the_targets_class_count():
    """Independent reference: scipy's spearmanr of each target's margins against the number of
    its class's training images in each subset (subsets of one size: +1/-1 ranks as the count)."""
    from scipy.stats import spearmanr

    from brittle.eval.lds import sign_alone

    masks, margins, labels, targets = _bank()
    got = sign_alone(masks, margins, labels, targets)
    expected = [spearmanr(margins[:, t], masks[:, labels == y].sum(1)).statistic
                for t, y in enumerate(targets)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.mean() > 0.3   # the margins follow the class count here
    # the rule with other classes 0 ranks the subsets the same way
    zero = lds(masks, margins, (labels[None, :] == targets[:, None]).astype(float))
    np.testing.assert_allclose(got, zero, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_sign_alone_of_constant_margins_is_zero_as_the_lds_stage_scores_it():
    from brittle.eval.lds import sign_alone

    masks, margins, labels, targets = _bank()
    margins[:, 0] = 1.5
    assert sign_alone(masks, margins, labels, targets)[0] == 0.0


def test_lds_stage_writes_sign_alone_beside_the_lds_and_the_summary_shows_both(tmp_path):
    """lds.parquet holds both per target; the run's table prints both; a resumed run reads
    them back without a bank; a run written before the column has no sign-alone figure."""
    from scipy.stats import spearmanr

    from brittle.eval.lds import LinearDatamodelingScore
    from brittle.runtime.cache import StageCache
    from brittle.runtime.execution import Execution
    from brittle.stages import lds as lds_stage
    from brittle.stages.bank import Bank

    masks, margins, labels, test_labels = _bank(t=8)
    ex = Execution(torch.device("cpu"), False, StageCache(tmp_path / "cache"), tmp_path)
    ids = np.array([1, 4, 6])
    tau = np.where(labels[None, :] == test_labels[ids][:, None], 1.0, -1.0) * np.arange(1, 61)
    evaluation = LinearDatamodelingScore(n_models=40)
    result = lds_stage.run(ex, evaluation, Bank(masks, margins, 0.0), ids, tau, 1.0,
                           (torch.as_tensor(labels), test_labels))
    counts = [spearmanr(margins[:, t], masks[:, labels == test_labels[t]].sum(1)).statistic
              for t in ids]
    assert result.sign_alone == pytest.approx(np.mean(counts))
    assert result.sign_alone_ci is not None and result.sign_alone_ci[0] <= result.sign_alone
    assert lds_stage.run(ex, evaluation, None, ids, None, 1.0) == result
    import pandas as pd
    written = tmp_path / "lds.parquet"
    pd.read_parquet(written).drop(columns="sign_alone").to_parquet(written)
    assert lds_stage.recorded_sign_alone(tmp_path) is None


def test_the_run_table_prints_the_lds_and_sign_alone(tmp_path):
    import pandas as pd

    from brittle.stages.summarize import RunDetails, RunNames, format_table, run

    lds = pd.DataFrame({"target": [3, 5], "lds": [0.1, 0.3], "sign_alone": [0.2, 0.6]})
    lds.to_parquet(tmp_path / "lds.parquet")
    support = pd.DataFrame({"target": [3, 5], "label": [0, 1], "support": [4, 8],
                            "n_models": [3, 3]})
    names = RunNames("ESVM", None, "remove", None, None, "digits")
    details = RunDetails(task="remove", names=names, method="ESVM", choices={},
                         reference_accuracy=1.0, knn_accuracy=None, score_cost={}, search_models=6,
                         models_trained_this_run=6, n_rounds=3, search={},
                         lds=0.2, lds_ci=[0.1, 0.3], lds_sparsify_top=0.05)
    summary = run(tmp_path, support, 16, details)
    assert summary.lds_sign_alone == pytest.approx(0.4)
    text = format_table(support, summary, ["zero", "one"])
    assert "LDS 0.200 (95% CI 0.100..0.300), top 5% of |attributions| kept" in text
    assert "LDS of sign estimation alone 0.400 (95% CI" in text
