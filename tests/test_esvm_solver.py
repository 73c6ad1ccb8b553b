"""The batched ESVM solver's parts against independent references: its exact line search against a
dense evaluation of the objective, and each solver path (working sets grown over many rounds,
the Newton-CG fallback) against scikit-learn's liblinear optimum on real digits features."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.svm import LinearSVC

from brittle.data.datasets import load_digits
from brittle.scorers.esvm.newton import NewtonSettings, exemplar_svm_decisions
from brittle.scorers.esvm.working_set import exact_line_search


def test_exact_line_search_minimises_the_piecewise_quadratic():
    rng = np.random.default_rng(0)
    t, n = 40, 30
    marg, dmarg = rng.normal(0.5, 1.0, (t, n)), rng.normal(0, 1.0, (t, n))
    dmarg[:, :3] = 0.0                                  # points that do not move
    c = rng.uniform(0.1, 2.0, (t, n))
    c[:, -2:] = 0.0                                     # padding
    a, b = -np.abs(rng.normal(0, 3, t)) - 0.1, rng.uniform(0.5, 2.0, t)  # a descent direction
    s = exact_line_search(*(torch.tensor(v) for v in (a, b, marg, dmarg, c))).numpy()
    grid = np.linspace(0, 20, 200001)

    def phi(row: int, steps: np.ndarray) -> np.ndarray:
        r = np.clip(1 - marg[row][None] - steps[:, None] * dmarg[row][None], 0, None)
        return a[row] * steps + 0.5 * b[row] * steps ** 2 + (c[row] * r ** 2).sum(1)

    for row in range(t):
        best = grid[np.argmin(phi(row, grid))]
        assert abs(s[row] - best) <= 2e-4 + 1e-4 * best
        assert phi(row, s[row:row + 1])[0] <= phi(row, np.array([best]))[0] + 1e-9


@pytest.fixture(scope="module")
def digits_problems():
    """Per class: standardised digits pixels of that class (negatives) and 6 test queries."""
    data = load_digits()
    train = data.train.images.reshape(len(data.train), -1).astype(np.float32) / 255.0
    test = data.test.images.reshape(len(data.test), -1).astype(np.float32) / 255.0
    out = []
    for label in (0, 3, 8):
        out.append((test[data.test.labels == label][:6], train[data.train.labels == label]))
    return out


def _liblinear(query: np.ndarray, neg: np.ndarray) -> np.ndarray:
    x = np.concatenate([query[None], neg])
    y = np.r_[1, np.zeros(len(neg), dtype=int)]
    clf = LinearSVC(C=0.1, class_weight="balanced", loss="squared_hinge", tol=1e-10,
                    max_iter=100000, dual=True, random_state=0).fit(x, y)
    return clf.decision_function(neg)


@pytest.mark.parametrize("settings", [
    NewtonSettings(),                                        # default path
    NewtonSettings(working_set=2, grow=4, chunk=4),          # many working-set rounds
    NewtonSettings(warm_steps=2, working_set=8),             # Newton-CG warm start first
    NewtonSettings(max_working_set=4),                       # falls back to Newton-CG
], ids=["default", "rounds", "warm", "fallback"])
def test_solver_paths_reach_the_liblinear_optimum(settings, digits_problems):
    for queries, neg in digits_problems:
        z = exemplar_svm_decisions(torch.tensor(queries), torch.tensor(neg), 0.1, settings).numpy()
        for row, query in zip(z, queries):
            ref = _liblinear(query, neg)
            assert np.abs(row - ref).max() < 2e-3 * np.abs(ref).max()
            top = np.argsort(-ref)[:20]
            assert len(set(top) & set(np.argsort(-row)[:20])) >= 19
