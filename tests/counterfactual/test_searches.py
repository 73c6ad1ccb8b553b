"""Bisection against synthetic monotone oracles (property-based) and the reference trace."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brittle.counterfactual.searches import NOT_FOUND, Bisection
from brittle.runtime.errors import BrittleError


def step_oracle(threshold: int, calls: list[int]):
    """Accuracy 1 below the threshold, 0 at or above it: modification of >= threshold flips."""
    def accuracy(k: int) -> float:
        calls.append(k)
        return 1.0 if k < threshold else 0.0
    return accuracy


@settings(max_examples=300, deadline=None)
@given(K=st.integers(1, 5000), B=st.integers(0, 12), data=st.data())
def test_finds_threshold_within_resolution(K, B, data):
    t = data.draw(st.integers(0, K))
    calls: list[int] = []
    result = Bisection(budget=B, n_test=1, max_support=K).run(step_oracle(t, calls))
    assert t <= result.support <= K
    assert result.support - t <= math.ceil(K / 2 ** B)
    assert len(calls) == 1 + B == result.n_tests
    assert calls[0] == K


@settings(max_examples=100, deadline=None)
@given(K=st.integers(1, 5000), B=st.integers(0, 12), extra=st.integers(1, 100))
def test_not_found_when_max_support_does_not_flip(K, B, extra):
    calls: list[int] = []
    result = Bisection(budget=B, n_test=1, max_support=K).run(step_oracle(K + extra, calls))
    assert result.support == NOT_FOUND
    assert calls == [K]


def test_paper_resolution_is_ten():
    for t in range(0, 1281, 7):
        r = Bisection(budget=7, n_test=5, max_support=1280).run(step_oracle(t, []))
        assert 0 <= r.support - t <= 10


def test_majority_rule_uses_strictly_more_than_half():
    # exactly half of the models still correct counts as flipped (acc > 0.5 is "not flipped")
    r = Bisection(budget=3, n_test=2, max_support=8).run(lambda k: 0.5)
    assert r.support == 1  # every probe flips, so the search walks down to the smallest probe


def test_trace_matches_reference_sequence():
    # K=1280, threshold 300: the probes of the reference algorithm, worked by hand
    calls: list[int] = []
    r = Bisection(budget=7, n_test=5, max_support=1280).run(step_oracle(300, calls))
    assert calls == [1280, 640, 320, 160, 240, 280, 300, 290]
    assert r.support == 300


@pytest.mark.parametrize("kwargs", [{"budget": -1}, {"n_test": 0}, {"max_support": 0}])
def test_out_of_range_settings_are_errors(kwargs):
    with pytest.raises(BrittleError, match="out of range"):
        Bisection(**kwargs)


@settings(max_examples=200, deadline=None)
@given(K=st.integers(8, 5000), B=st.integers(1, 10), width=st.integers(2, 7), data=st.data())
def test_parallel_reaches_bisection_resolution_in_fewer_rounds(K, B, width, data):
    from brittle.counterfactual.searches import Parallel
    t = data.draw(st.integers(1, K))
    bis = Bisection(budget=B, n_test=1, max_support=K).run(step_oracle(t, []))
    par = Parallel(width=width, budget=B, n_test=1, max_support=K).run(step_oracle(t, []))
    res = math.ceil(K / 2 ** B)
    assert t <= par.support <= t + res and t <= bis.support <= t + res
    assert par.n_rounds <= bis.n_rounds
    if B >= 4 and K >= 2 ** B:
        assert par.n_rounds < bis.n_rounds


@settings(max_examples=200, deadline=None)
@given(K=st.integers(1, 5000), B=st.integers(0, 10), data=st.data())
def test_grid_returns_first_flipping_size(K, B, data):
    from brittle.counterfactual.searches import Grid
    t = data.draw(st.integers(0, K + 5))
    g = Grid(budget=B, n_test=1, max_support=K)
    r = g.run(step_oracle(t, []))
    flips = [s for s in g.grid() if s >= t]
    assert r.support == (flips[0] if flips else NOT_FOUND)
    assert g.grid()[-1] == K
