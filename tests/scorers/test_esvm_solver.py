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


def _hard_chunk():
    """12 digits '3' queries of which exactly one has a support set above 96 points (the others
    fit in it): measured with single-target solves, see the test below."""
    data = load_digits()
    train = data.train.images.reshape(len(data.train), -1).astype(np.float32) / 255.0
    test = data.test.images.reshape(len(data.test), -1).astype(np.float32) / 255.0
    return test[data.test.labels == 3][:12], train[data.train.labels == 3]


def _fallback_rows(monkeypatch, queries, neg, settings) -> tuple[list[int], np.ndarray]:
    """Rows sent to full Newton-CG (the slow path) per call, and the decision values."""
    from brittle.scorers.esvm import newton
    rows: list[int] = []
    real = newton._newton_cg

    def spy(chunk, *args):
        if args[-1] == settings.max_newton:
            rows.append(len(chunk))
        return real(chunk, *args)

    monkeypatch.setattr(newton, "_newton_cg", spy)
    z = exemplar_svm_decisions(torch.tensor(queries), torch.tensor(neg), 0.1, settings).numpy()
    return rows, z


def test_one_hard_target_leaves_its_chunk_to_the_exact_phase(monkeypatch):
    queries, neg = _hard_chunk()
    hard = []
    for i in range(len(queries)):
        one = NewtonSettings(working_set=8, grow=8, max_working_set=96, chunk=1)
        hard.append(bool(_fallback_rows(monkeypatch, queries[i:i + 1], neg, one)[0]))
        monkeypatch.undo()
    assert sum(hard) == 1
    rows, z = _fallback_rows(monkeypatch, queries, neg,
                             NewtonSettings(working_set=8, grow=8, max_working_set=96, chunk=12))
    assert rows == [1]              # the hard target alone, not the chunk of 12
    for row, query in zip(z, queries):
        ref = _liblinear(query, neg)
        assert np.abs(row - ref).max() < 2e-3 * np.abs(ref).max()


def test_chunks_are_sized_from_the_memory_budget(monkeypatch):
    from brittle.scorers.esvm import newton
    queries, neg = _hard_chunk()
    per = newton.bytes_per_target(96, queries.shape[1] + 1, len(neg))
    tight = NewtonSettings(working_set=8, grow=8, max_working_set=96,
                           memory_budget=3 * per + per // 2)
    assert newton.chunk_size(tight, queries.shape[1] + 1, len(neg), torch.device("cpu")) == 3
    assert newton.chunk_size(NewtonSettings(memory_budget=1), 65, 100, torch.device("cpu")) == 1
    assert newton.chunk_size(NewtonSettings(memory_budget=1 << 50), 65, 100,
                             torch.device("cpu")) == 64
    seen: list[int] = []
    real = newton.refine
    monkeypatch.setattr(newton, "refine",
                        lambda chunk, *a, **k: seen.append(len(chunk)) or real(chunk, *a, **k))
    budgeted = exemplar_svm_decisions(torch.tensor(queries), torch.tensor(neg), 0.1, tight).numpy()
    assert seen and max(seen) <= 3
    monkeypatch.undo()
    whole = exemplar_svm_decisions(torch.tensor(queries), torch.tensor(neg), 0.1,
                                   NewtonSettings(working_set=8, grow=8, max_working_set=96,
                                                  chunk=12)).numpy()
    np.testing.assert_allclose(budgeted, whole, rtol=1e-6, atol=1e-6 * np.abs(whole).max())


def test_a_chunk_that_runs_out_of_memory_is_split(monkeypatch):
    """An allocation failure in the working-set phase halves the chunk instead of failing."""
    from brittle.scorers.esvm import newton
    queries, neg = _hard_chunk()
    real = newton.refine

    def small_memory(chunk, *args, **kwargs):
        if len(chunk) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 96.00 GiB")
        return real(chunk, *args, **kwargs)

    settings = NewtonSettings(working_set=8, grow=8, max_working_set=512, chunk=12)
    monkeypatch.setattr(newton, "refine", small_memory)
    z = exemplar_svm_decisions(torch.tensor(queries), torch.tensor(neg), 0.1, settings).numpy()
    for row, query in zip(z, queries):
        ref = _liblinear(query, neg)
        assert np.abs(row - ref).max() < 2e-3 * np.abs(ref).max()
