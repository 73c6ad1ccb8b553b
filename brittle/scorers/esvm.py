"""Exemplar SVM scorer: one linear SVM per target (it the only positive, its pool negative).

Training images are ranked by the SVM's decision value, highest first. The `sklearn` backend is
the paper's reference recipe: LinearSVC(C=0.1, class_weight='balanced', loss='squared_hinge',
max_iter=10000, tol=1e-6) on X = [query; pool], y = [1, 0, ..., 0].
"""
from __future__ import annotations

import warnings

import numpy as np

from brittle.errors import BrittleError
from brittle.scorers.base import candidate_pool, top_of

_BACKENDS = ("sklearn", "cuml")


def cuml_available() -> bool:
    """cuML importable and a CUDA GPU visible (cuML is an optional extra: `.[gpu]`)."""
    try:
        import cuml  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class ExemplarSVM:
    def __init__(self, C: float = 0.1, max_iter: int = 10000, tol: float = 1e-6,
                 backend: str = "sklearn", label_conditioning: bool = True,
                 dual: bool = True, random_state: int | None = 0):
        if backend not in _BACKENDS:
            raise BrittleError(f"scorer.backend={backend} is not valid; use one of {list(_BACKENDS)}")
        if backend == "cuml" and not cuml_available():
            raise BrittleError("scorer.backend=cuml needs cuML and a CUDA GPU (pip install -e "
                               "'.[gpu]' on a GPU machine); use scorer.backend=sklearn here")
        self.C, self.max_iter, self.tol = float(C), int(max_iter), float(tol)
        self.backend, self.label_conditioning = backend, label_conditioning
        # The reference ran scikit-learn's then-default dual solver; random_state pins
        # liblinear's coordinate order so a rerun gives the identical ranking.
        self.dual, self.random_state = dual, random_state
        self.not_converged = 0

    def decision_values(self, query: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        """Decision value [P] of each negative row [P, D] under the exemplar SVM of query [D]."""
        x = np.concatenate([query[None, :], negatives], axis=0)
        y = np.zeros(len(x), dtype=np.int64)
        y[0] = 1
        if self.backend == "cuml":
            return self._cuml_decision(x, y, negatives)
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.svm import LinearSVC

        clf = LinearSVC(C=self.C, class_weight="balanced", loss="squared_hinge",
                        max_iter=self.max_iter, tol=self.tol, dual=self.dual,
                        random_state=self.random_state)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(x, y)
        self.not_converged += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        return clf.decision_function(negatives)

    def _cuml_decision(self, x: np.ndarray, y: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        from cuml.svm import LinearSVC as CuLinearSVC

        # liblinear penalises the bias (an appended constant feature): penalized_intercept matches it
        clf = CuLinearSVC(C=self.C, class_weight="balanced", loss="squared_hinge",
                          penalized_intercept=True, max_iter=self.max_iter, tol=self.tol)
        clf.fit(x.astype(np.float32), y.astype(np.float32))
        return np.asarray(clf.decision_function(negatives.astype(np.float32)), dtype=np.float64)

    def rank(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
             query_labels: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
        out = np.empty((len(queries), k), dtype=np.int64)
        for t, (q, label) in enumerate(zip(queries, query_labels)):
            pool = candidate_pool(train_labels, int(label), self.label_conditioning)
            out[t] = top_of(pool, self.decision_values(q, train[pool]), k)
        return out
