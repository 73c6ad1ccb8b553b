"""Support CDF and AUC against hand-worked values and direct numerical integration."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from brittle.counterfactual.metrics import support_auc, support_cdf


def test_known_values():
    s = np.array([0, 10, 10, -1])
    assert support_cdf(s, 20) == [(0, 0.25), (10, 0.75), (20, 0.75)]
    # (20 + 10 + 10 + 0) / 20 / 4
    assert support_auc(s, 20) == 0.5


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-1, 200), min_size=1, max_size=30), st.integers(1, 200))
def test_auc_equals_integral_of_cdf(supports, K):
    s = np.array(supports)
    s = np.where(s > K, -1, s)
    grid = np.arange(K)  # the step CDF is constant on [k, k+1): a left Riemann sum is exact
    cdf = np.array([((s >= 0) & (s <= k)).mean() for k in grid])
    assert np.isclose(support_auc(s, K), cdf.sum() / K)
    # every CDF point agrees with a direct count
    for k, f in support_cdf(s, K):
        assert np.isclose(f, ((s >= 0) & (s <= k)).mean())
