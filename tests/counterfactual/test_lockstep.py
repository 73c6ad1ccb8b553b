"""Lockstep search: every target's tests trained round by round give the same models, supports
and test log, margins bit for bit, as target after target; rounds gather the tests of many
targets; errors surface."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from brittle.counterfactual.lockstep import SearchTarget, search_lockstep
from brittle.counterfactual.searches import Bisection, Parallel
from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import MLP
from brittle.retrain.recipe import Recipe
from brittle.retrain.recipe_trainer import train_one
from brittle.retrain.stacked import train_stacked_jobs
from brittle.retrain.trainer import Job
from tests.helpers import TINY, make_cfg


@pytest.mark.parametrize("search", ["bisection", "parallel"])
def test_lockstep_and_target_after_target_train_the_same_models(search, tmp_path):
    from brittle.pipeline import run
    found = {}
    for lockstep in ("true", "false"):
        cfg = make_cfg([*TINY, "targets.n=4", "task=mislabel", f"search={search}",
                        "search.max_support=16", f"search.lockstep={lockstep}", "search.budget=2",
                        "search.n_test=2"],
                       cache_dir=tmp_path / "cache")
        summary = run(cfg, tmp_path / lockstep)
        tests = pd.read_parquet(tmp_path / lockstep / "tests.parquet").drop(columns="seconds")
        found[lockstep] = (pd.read_parquet(tmp_path / lockstep / "support.parquet"), tests,
                           summary.n_rounds)
    (support, tests, rounds), (alone_support, alone_tests, alone_rounds) = \
        found["true"], found["false"]
    assert support.equals(alone_support)
    # the same models: every verdict and margin bit for bit, however a round grouped them
    assert tests.equals(alone_tests)
    assert rounds < alone_rounds   # 4 targets' rounds run together


class _Tester:
    """A stand-in tester: target t flips from k >= threshold[t]; records each round's requests."""

    def __init__(self, thresholds: dict[int, int]):
        self.thresholds, self.rounds = thresholds, []

    def accuracies(self, requests):
        self.rounds.append([(r.target, r.k) for r in requests])
        return [0.0 if r.k >= self.thresholds[r.target] else 1.0 for r in requests]


def test_a_round_holds_every_unfinished_targets_next_tests_in_target_order():
    thresholds = {10: 5, 11: 40, 12: 1000, 13: 64}
    tester = _Tester(thresholds)
    searched = [SearchTarget(t, np.arange(64), None) for t in thresholds]
    done = []
    rounds = search_lockstep(Bisection(budget=3, n_test=1, max_support=64), tester, searched,
                             lambda i, result: done.append((searched[i].target, result.support)))
    assert tester.rounds[0] == [(10, 64), (11, 64), (12, 64), (13, 64)]
    assert tester.rounds[1] == [(10, 32), (11, 32), (13, 32)]   # 12 did not flip at K: finished
    assert rounds == 4 and sorted(done) == [(10, 8), (11, 40), (12, -1), (13, 64)]
    # each result is what the search finds target after target
    for target, support in done:
        oracle = lambda k, t=target: 0.0 if k >= thresholds[t] else 1.0  # noqa: E731
        alone = Bisection(budget=3, n_test=1, max_support=64).run(oracle)
        assert alone.support == support
    # a parallel search's probes of one round arrive together
    tester = _Tester(thresholds)
    search_lockstep(Parallel(width=3, budget=3, n_test=1, max_support=64), tester, searched[:2],
                    lambda i, r: None)
    assert tester.rounds[1] == [(10, 16), (10, 32), (10, 48), (11, 16), (11, 32), (11, 48)]


def test_an_error_in_a_search_or_a_round_ends_the_lockstep_search():
    class Failing(Bisection):
        def run(self, accuracy_at):
            accuracy_at(self.max_support)
            raise RuntimeError("search broke")

    tester = _Tester({1: 3, 2: 3})
    searched = [SearchTarget(1, np.arange(8), None), SearchTarget(2, np.arange(8), None)]
    with pytest.raises(RuntimeError, match="search broke"):
        search_lockstep(Failing(budget=2, n_test=1, max_support=8), tester, searched,
                        lambda i, r: None)

    class Broken(_Tester):
        def accuracies(self, requests):
            raise MemoryError("out of memory")

    with pytest.raises(MemoryError):
        search_lockstep(Bisection(budget=2, n_test=1, max_support=8), Broken({}), searched,
                        lambda i, r: None)


def test_stacked_models_of_different_tests_are_the_models_stacked_alone():
    data = load_digits()
    x = normalized(data.train.images, [0.3], [0.4])
    y = torch.as_tensor(data.train.labels)
    build = lambda: MLP([1, 8, 8], 10, hidden=[32])  # noqa: E731
    recipe = Recipe(epochs=2, batch_size=64, lr=0.1, flip=True)
    relabelled = y.clone()
    relabelled[:40] = 3
    n = len(y)
    jobs = [Job(torch.arange(40, n), y, 1), Job(torch.arange(0, n - 40), y, 2),
            Job(torch.arange(n - 40), relabelled, 3)]
    stacked = train_stacked_jobs(build, recipe, x, jobs)
    for job, model in zip(jobs, stacked):
        alone = train_stacked_jobs(build, recipe, x, [job])[0]
        for a, b in zip(model.parameters(), alone.parameters()):
            assert torch.equal(a, b)
        # and close to the unstacked network's training (float rounding apart)
        unstacked = train_one(build, recipe, x, job.labels, job.keep, job.seed)
        for a, b in zip(model.parameters(), unstacked.parameters()):
            assert torch.allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="equally many images"):
        train_stacked_jobs(build, recipe, x, [Job(torch.arange(10), y, 1),
                                              Job(torch.arange(11), y, 2)])
