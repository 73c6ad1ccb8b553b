"""Exemplar SVM scorer (the paper's method): one linear SVM per target, it the only positive and
its pool (`pool: same_class`: its class) negative; a training image's score is its decision
value, defined on every training image. The search ranks the pool by it; the LDS takes the
inverse distance to a hyperplane, signed by the paper's sign estimation (other classes negative;
`other_classes="zero"`: 0), from the ranking's SVM or (`lds_negatives: all`, section 3's text)
one trained against every training image; `magnitude: inverse_unsigned`: |decision| / ||w||.

Backends:
  sklearn  the paper's reference recipe, unchanged: LinearSVC(C=0.1, class_weight='balanced',
           loss='squared_hinge', max_iter=10000, tol=1e-6) on X = [query; pool], y = [1, 0, ..., 0]
  torch    the same objective solved for many targets at once (newton.py), CPU or GPU,
           checked against sklearn; a target whose solve does not converge is redone by sklearn
  cuml     cuML's LinearSVC on a GPU (optional extra `.[gpu]`; a float32 solver, only on request)
  auto     torch
Targets are grouped by class so each group shares its negative set. Non-converged solves are
counted in `not_converged` (summary.json, the log).
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import Scorer, TargetSet, candidate_pool, check_pool, sign_rule
from brittle.scorers.magnitude import PAPER, check_magnitude

log = logging.getLogger(__name__)

_BACKENDS = ("auto", "sklearn", "cuml", "torch")
LDS_NEGATIVES = ("pool", "all")


def cuml_available() -> bool:
    """cuML importable and a CUDA GPU visible (cuML is an optional extra: `.[gpu]`)."""
    try:
        import cuml  # noqa: F401
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class ExemplarSVM(Scorer):
    method = "ESVM"

    def __init__(self, C: float = 0.1, max_iter: int = 10000, tol: float = 1e-6,
                 backend: str = "auto", pool: str = "same_class",
                 dual: bool = True, random_state: int | None = 0, torch_tol: float = 1e-8,
                 batch_size: int = 1024, lds_sparsity: float = 0.05, cuml_tol: float = 1e-3,
                 memory_budget: int = 0, other_classes: str = "negative", magnitude: str = PAPER,
                 lds_negatives: str = "pool"):
        self.other_classes, self.magnitude = sign_rule(other_classes), check_magnitude(magnitude)
        if lds_negatives not in LDS_NEGATIVES:
            raise BrittleError(f"scorer.lds_negatives={lds_negatives} is not valid; use one of "
                               f"{list(LDS_NEGATIVES)}")
        # the SVM the LDS magnitudes come from: the ranking's (pool) or one against every image
        self.lds_negatives = lds_negatives
        self._norms: dict[int, float] = {}   # ||w|| of each target's ranking SVM
        if backend not in _BACKENDS:
            raise BrittleError(f"scorer.backend={backend} is not valid; use one of "
                               f"{list(_BACKENDS)}")
        if backend == "cuml" and not cuml_available():
            raise BrittleError("scorer.backend=cuml needs cuML and a CUDA GPU, brittle's "
                               "gpu extra: pip install 'brittle[gpu]' on a GPU machine; or use "
                               "scorer.backend=torch or sklearn")
        self.backend = "torch" if backend == "auto" else backend
        self.C, self.max_iter, self.tol = float(C), int(max_iter), float(tol)
        self.pool, self.lds_sparsity = check_pool(pool), float(lds_sparsity)
        # The reference ran scikit-learn's then-default dual solver; random_state pins
        # liblinear's coordinate order so a rerun gives the identical ranking.
        self.dual, self.random_state = dual, random_state
        self.torch_tol, self.batch_size = float(torch_tol), int(batch_size)
        # cuML solves in float32: its answers are judged converged within this relative gradient
        self.cuml_tol = float(cuml_tol)
        # bytes for a chunk of torch solves; 0: half the free memory
        self.memory_budget = int(memory_budget)
        self.device = torch.device("cpu")
        self.not_converged = 0  # targets whose final solve missed its tolerance
        self.fallbacks = 0      # torch solves redone by liblinear

    def scores(self, targets: TargetSet) -> np.ndarray:
        """Decision values float64 [T, N] of every training image under each target's SVM (fitted
        against the target's pool; the ranking keeps the pool, the attributions use them all)."""
        decision, norms = self._solve(targets, self.pool)
        self._norms.update(zip((int(i) for i in targets.ids), norms))
        return decision

    def attribution_distance(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """Minus the decision values [T, N] of the ranking's SVMs (`lds_negatives: pool`) or of
        SVMs trained against every training image (`all`: section 3's "all other samples as
        negative"); with `magnitude: inverse_unsigned` the geometric distance |decision| /
        ||w|| to the hyperplane."""
        if self.lds_negatives == "all":
            decision, norms = self._solve(targets, "all")
        elif self.magnitude == "inverse_unsigned":   # the ranking SVMs' norms, from scores()
            decision = np.asarray(scores, dtype=np.float64)
            norms = np.array([self._norms[int(i)] for i in targets.ids])
        else:
            return -np.asarray(scores, dtype=np.float64)
        if self.magnitude == "inverse_unsigned":
            return np.abs(decision) / norms[:, None]
        return -decision

    def _reading_suffix(self) -> str:
        """The LDS reading when not the default: its SVM's negatives and magnitude."""
        if (self.lds_negatives, self.magnitude) == ("pool", self.default_magnitude):
            return ""
        return f" (LDS: SVM against {self.lds_negatives}, {self.magnitude})"

    def _solve(self, targets: TargetSet, pool: str) -> tuple[np.ndarray, np.ndarray]:
        """Decision values float64 [T, N] of every training image under each target's SVM
        against `pool`, and the norms ||w|| [T] of their hyperplanes (without the bias)."""
        train, labels, feats = self.train.features, self.train.labels, targets.features
        if train is None or feats is None:
            raise ValueError("the ESVM scores backbone features: prepare it with train and "
                             "target features")
        if self.backend == "torch":
            return self._torch_scores(feats, targets.labels, train, labels, pool)
        out, norms = np.empty((len(targets.ids), len(labels))), np.empty(len(targets.ids))
        for rows, negatives in self._groups(targets.labels, labels, pool):
            out[rows], norms[rows] = self._decisions_and_norms(feats[rows], train[negatives],
                                                               train)
        return out, norms

    def _groups(self, target_labels: np.ndarray, labels: np.ndarray, pool: str):
        """(rows of the targets, their shared negatives) per class (one group with `all`)."""
        if pool == "all":
            yield np.arange(len(target_labels)), candidate_pool(labels, 0, "all")
            return
        for label in np.unique(target_labels):
            yield (np.flatnonzero(target_labels == label),
                   candidate_pool(labels, int(label), "same_class"))

    def _torch_scores(self, feats: np.ndarray, target_labels: np.ndarray, train: np.ndarray,
                      labels: np.ndarray, pool: str) -> tuple[np.ndarray, np.ndarray]:
        """The torch backend over all class groups: the training features go to the device once,
        each group's hyperplanes are solved against its negatives, and every target's decision
        values on all N images come from one product at the end (not one per group)."""
        from brittle.scorers.esvm.newton import decisions

        train_dev = torch.as_tensor(np.require(train, np.float32, ["C", "W"]), device=self.device)
        weights = torch.empty(len(feats), train.shape[1] + 1, dtype=torch.float64,
                              device=self.device)
        for rows, negatives in self._groups(target_labels, labels, pool):
            weights[torch.as_tensor(rows, device=self.device)] = self._torch_weights(
                feats[rows], train_dev[torch.as_tensor(negatives, device=self.device)])
        return (decisions(weights, train_dev).cpu().numpy(),
                weights[:, :-1].norm(dim=1).cpu().numpy())

    def decisions(self, queries: np.ndarray, negatives: np.ndarray,
                  points: np.ndarray) -> np.ndarray:
        """Decision values [T, M] of points [M, D] under the SVMs of queries [T, D] vs negatives."""
        if self.backend == "torch":
            return self._torch_decisions(queries, negatives, points)
        return self._decisions_and_norms(queries, negatives, points)[0]

    def _decisions_and_norms(self, queries: np.ndarray, negatives: np.ndarray,
                             points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sklearn and cuml backends: decision values [T, M] and hyperplane norms [T]."""
        if self.backend == "cuml":
            return self._cuml_decisions(queries, negatives, points)
        fits = [self._liblinear(q, negatives, points) for q in queries]
        return np.stack([d for d, _ in fits]), np.array([n for _, n in fits])

    def _liblinear(self, query: np.ndarray, negatives: np.ndarray,
                   points: np.ndarray | None = None) -> Any:
        """The reference recipe's fit for one target: (decision values on `points`, scikit-learn's
        own decision_function, and ||w||), or the hyperplane float64 [D+1] (bias last) when no
        points are given."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.svm import LinearSVC

        x = np.concatenate([query[None, :], negatives], axis=0)
        y = np.zeros(len(x), dtype=np.int64)
        y[0] = 1
        clf = LinearSVC(C=self.C, class_weight="balanced", loss="squared_hinge",
                        max_iter=self.max_iter, tol=self.tol, dual=self.dual,
                        random_state=self.random_state)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            clf.fit(x, y)
        failed = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        if failed:
            log.warning("liblinear did not converge for a target (max_iter=%d)", self.max_iter)
        self.not_converged += int(failed > 0)
        if points is None:
            return np.concatenate([np.ravel(clf.coef_),
                                   np.ravel(clf.intercept_)]).astype(np.float64)
        return (clf.decision_function(np.asarray(points, dtype=np.float64)),
                float(np.linalg.norm(clf.coef_)))

    def _cuml_decisions(self, queries: np.ndarray, negatives: np.ndarray,
                        points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cuML's LinearSVC, one fit per target. The pool goes to the GPU once per class group and
        each target's problem is assembled there (cuML reads CUDA tensors in place, where numpy
        input would be uploaded again for every fit). cuML reports no iteration count, so a fit
        counts as converged by this solver's own rule: the primal gradient norm at its answer
        relative to that at w = 0 (newton.relative_gradient) within `cuml_tol`."""
        from cuml.svm import LinearSVC as CuLinearSVC

        from brittle.scorers.esvm.newton import decisions, relative_gradient

        dev = self.device
        neg = torch.as_tensor(np.asarray(negatives, dtype=np.float32), device=dev)
        pts = torch.as_tensor(np.asarray(points, dtype=np.float32), device=dev)
        y = torch.zeros(len(neg) + 1, dtype=torch.float32, device=dev)
        y[0] = 1.0
        rows, norms = [], []
        for query in np.asarray(queries, dtype=np.float32):
            q = torch.as_tensor(query, device=dev)[None, :]
            # liblinear penalises the bias (an appended constant feature):
            # penalized_intercept matches it
            clf = CuLinearSVC(C=self.C, class_weight="balanced", loss="squared_hinge",
                              penalized_intercept=True, max_iter=self.max_iter, tol=self.tol,
                              output_type="numpy")
            clf.fit(torch.cat([q, neg]), y)
            w = torch.cat([torch.as_tensor(np.ravel(clf.coef_)),
                           torch.as_tensor(np.ravel(clf.intercept_))])
            w = w.to(device=dev, dtype=torch.float64)[None, :]
            if float(relative_gradient(w, q, neg, self.C)[0]) > self.cuml_tol:
                self.not_converged += 1
            rows.append(decisions(w, pts)[0])
            norms.append(float(w[0, :-1].norm()))
        return torch.stack(rows).cpu().numpy(), np.array(norms)

    def _torch_decisions(self, queries: np.ndarray, negatives: np.ndarray,
                         points: np.ndarray) -> np.ndarray:
        """Decision values [T, M] of points [M, D] under the torch solver's hyperplanes."""
        from brittle.scorers.esvm.newton import decisions

        neg = torch.as_tensor(np.asarray(negatives, dtype=np.float32), device=self.device)
        pts = torch.as_tensor(np.require(points, None, ["C", "W"]), device=self.device)
        return decisions(self._torch_weights(np.asarray(queries), neg), pts).cpu().numpy()

    def _torch_weights(self, queries: np.ndarray, neg: torch.Tensor) -> torch.Tensor:
        """Hyperplanes float64 [T, D+1] (bias last) of queries [T, D] against negatives neg [P, D]
        (float32, on the device), solved in batches; a target the torch solver leaves unconverged
        is redone by liblinear."""
        from brittle.scorers.esvm.newton import NewtonSettings, exemplar_svm_weights

        settings = NewtonSettings(tol=self.torch_tol, memory_budget=self.memory_budget)
        out = []
        for start in range(0, len(queries), self.batch_size):
            batch = np.asarray(queries[start:start + self.batch_size])
            pos = torch.as_tensor(batch, dtype=torch.float32, device=self.device)
            w, converged = exemplar_svm_weights(pos, neg, self.C, settings)
            for row in np.flatnonzero(~converged.cpu().numpy()):
                log.warning("torch ESVM solve did not converge for a target; "
                            "using liblinear for it")
                self.fallbacks += 1
                w[row] = torch.as_tensor(self._liblinear(batch[row], neg.cpu().numpy()),
                                         device=w.device)
            out.append(w)
        return torch.cat(out)
