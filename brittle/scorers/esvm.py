"""Exemplar SVM scorer: one linear SVM per target (it the only positive, its pool negative).

Training images are ranked by the SVM's decision value, highest first. Backends:
  sklearn  the paper's reference recipe, unchanged: LinearSVC(C=0.1, class_weight='balanced',
           loss='squared_hinge', max_iter=10000, tol=1e-6) on X = [query; pool], y = [1, 0, ..., 0]
  cuml     cuML's LinearSVC on a GPU (optional extra `.[gpu]`)
  torch    the same objective solved for many targets at once (esvm_torch.py), CPU or GPU
  auto     cuml when importable with a GPU, else torch
Targets are grouped by class so each group shares its negative set.
"""
from __future__ import annotations

import warnings

import numpy as np

from brittle.errors import BrittleError
from brittle.scorers.base import candidate_pool

_BACKENDS = ("auto", "sklearn", "cuml", "torch")


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
                 backend: str = "auto", label_conditioning: bool = True,
                 dual: bool = True, random_state: int | None = 0, torch_tol: float = 1e-8,
                 batch_size: int = 1024, device: str = "auto"):
        if backend not in _BACKENDS:
            raise BrittleError(f"scorer.backend={backend} is not valid; use one of {list(_BACKENDS)}")
        if backend == "cuml" and not cuml_available():
            raise BrittleError("scorer.backend=cuml needs cuML and a CUDA GPU (pip install -e "
                               "'.[gpu]' on a GPU machine); use scorer.backend=torch or sklearn")
        if backend == "auto":
            backend = "cuml" if cuml_available() else "torch"
        self.C, self.max_iter, self.tol = float(C), int(max_iter), float(tol)
        self.backend, self.label_conditioning = backend, label_conditioning
        # The reference ran scikit-learn's then-default dual solver; random_state pins
        # liblinear's coordinate order so a rerun gives the identical ranking.
        self.dual, self.random_state = dual, random_state
        self.torch_tol, self.batch_size, self.device = float(torch_tol), int(batch_size), device
        self.not_converged = 0

    def decision_values(self, query: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        """Decision value [P] of each negative row [P, D] under the exemplar SVM of query [D]."""
        if self.backend == "torch":
            return self._torch_decisions(query[None], negatives)[0]
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

    def _torch_decisions(self, queries: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        """Decision values [T, P] for queries [T, D] sharing negatives [P, D], in batches."""
        import torch

        from brittle.scorers.esvm_torch import NewtonSettings, exemplar_svm_decisions

        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" \
            else torch.device(self.device)
        neg = torch.as_tensor(negatives, dtype=torch.float32, device=dev)
        settings = NewtonSettings(tol=self.torch_tol)
        out = []
        for start in range(0, len(queries), self.batch_size):
            pos = torch.as_tensor(queries[start:start + self.batch_size], dtype=torch.float32, device=dev)
            out.append(exemplar_svm_decisions(pos, neg, self.C, settings).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        out = np.full((len(queries), len(train_labels)), -np.inf)
        if self.backend == "torch":  # one batched solve per class: the negatives are shared
            groups = np.unique(query_labels) if self.label_conditioning else [None]
            for label in groups:
                rows = np.flatnonzero(query_labels == label) if label is not None else np.arange(len(queries))
                pool = candidate_pool(train_labels, int(query_labels[rows[0]]), self.label_conditioning)
                out[np.ix_(rows, pool)] = self._torch_decisions(queries[rows], train[pool])
            return out
        for t, (q, label) in enumerate(zip(queries, query_labels)):
            pool = candidate_pool(train_labels, int(label), self.label_conditioning)
            out[t, pool] = self.decision_values(q, train[pool])
        return out
