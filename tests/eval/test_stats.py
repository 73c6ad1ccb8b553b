"""The pointwise bootstrap band of a curve over targets against the binomial distribution it
resamples: a CDF point where m of T targets are flipped is Binomial(T, m/T)/T under resampling."""
from __future__ import annotations

import numpy as np
from scipy.stats import binom

from brittle.eval.stats import bootstrap_band, bootstrap_ci


def _cdf(ks: np.ndarray):
    def curve(s: np.ndarray) -> np.ndarray:
        found = np.where(s >= 0, s, ks[-1] + 1)
        return (found[None, :] <= ks[:, None]).mean(axis=1)
    return curve


def test_the_band_of_a_cdf_point_is_the_binomial_interval_of_its_fraction():
    supports = np.array([2, 5, 5, 9, -1, -1, -1, -1, -1, -1])   # 10 targets, 4 flipped by k = 9
    ks = np.array([0, 2, 9])
    lo, hi = bootstrap_band(supports, _cdf(ks), n_boot=4000)
    # at k = 9: 4 of 10 flipped, resampled fraction ~ Binomial(10, 0.4) / 10
    assert lo[2] == binom.ppf(0.025, 10, 0.4) / 10 and hi[2] == binom.ppf(0.975, 10, 0.4) / 10
    assert lo[0] == hi[0] == 0.0              # nothing flips at k = 0: no spread
    assert lo[1] == 0.0 and hi[1] == binom.ppf(0.975, 10, 0.1) / 10


def test_each_point_of_the_band_is_the_interval_of_that_point():
    supports = np.random.default_rng(1).integers(-1, 30, size=25)
    ks = np.arange(0, 30, 7)
    lo, hi = bootstrap_band(supports, _cdf(ks))
    for i, k in enumerate(ks):
        point = bootstrap_ci(supports, lambda s, k=k: _cdf(np.array([k]))(s)[0])
        assert np.isclose(lo[i], point[0]) and np.isclose(hi[i], point[1])
