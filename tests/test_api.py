"""Extending brittle without touching it: a scorer defined here runs through the whole pipeline,
and the Python API ranks one's own features as scikit-learn's reference recipe does."""
from __future__ import annotations

import json

import numpy as np

from brittle.api import rank
from brittle.pipeline import run
from brittle.scorers.base import Cost, Scorer, TargetSet, check_pool
from brittle.scorers.esvm.scorer import ExemplarSVM
from tests.helpers import TINY, make_cfg


class FarthestFirst(Scorer):
    """A toy scorer: the target's class, farthest feature first (a deliberately bad order)."""

    method = "Farthest"

    def __init__(self, seed: int = 0, pool: str = "same_class", lds_sparsity: float = 0.05,
                 other_classes: str = "negative"):
        self.pool, self.lds_sparsity = check_pool(pool), lds_sparsity
        self.other_classes = other_classes

    def scores(self, targets: TargetSet) -> np.ndarray:
        x = np.asarray(self.train.features, np.float64)
        return ((np.asarray(targets.features)[:, None, :] - x[None]) ** 2).sum(-1)

    def cost(self) -> Cost:
        return Cost(n_models=1)


def test_a_scorer_from_outside_runs_through_the_pipeline(tmp_path):
    cfg = make_cfg([*TINY, "scorer=random", "scorer._target_=tests.test_api.FarthestFirst",
                    "eval=lds", "eval.n_models=6"], cache_dir=tmp_path / "cache")
    summary = run(cfg, tmp_path / "run")
    assert summary.names.method == "Farthest MoCo"
    topk = np.load(tmp_path / "run" / "topk.npy")
    scores = np.load(tmp_path / "run" / "scores.npy")
    assert topk.shape == (2, 16) and scores.shape[0] == 2
    record = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert record["lds"] is not None and record["score_cost"]["n_models"] == 1


def test_python_api_ranks_own_features_like_the_reference_recipe():
    from sklearn.svm import LinearSVC
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 12)).astype(np.float32)
    labels = rng.integers(0, 3, 200)
    queries = rng.normal(size=(3, 12)).astype(np.float32)
    qlabels = np.array([0, 1, 2])
    topk = rank(ExemplarSVM(backend="torch"), train, labels, queries, qlabels, k=10)
    for t, (q, c) in enumerate(zip(queries, qlabels)):
        pool = np.flatnonzero(labels == c)
        x = np.concatenate([q[None], train[pool]])
        y = np.r_[1, np.zeros(len(pool))]
        ref = LinearSVC(C=0.1, class_weight="balanced", loss="squared_hinge", max_iter=10000,
                        tol=1e-6, random_state=0).fit(x, y).decision_function(train[pool])
        assert list(topk[t]) == list(pool[np.argsort(-ref, kind="stable")[:10]])


def test_readme_python_api_example_runs():
    from tests.helpers import ROOT
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = section[section.index("```python")
                   + len("```python"):section.index("```", section.index("```python") + 9)]
    scope: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), scope)
    assert scope["topk"].shape == (4, 20)
    labels, target_labels = scope["labels"], scope["target_labels"]
    assert all((labels[row] == c).all() for row, c in zip(scope["topk"], target_labels))
