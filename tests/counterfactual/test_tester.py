"""Counterfactual tests that stop once their majority is settled: the decision of every pattern of
outcomes equals the full test's, only the models a test in replicate order needs are trained,
round by round across tests; a resumed test retrains only what its log lacks; a whole digits
search finds the same supports with fewer models."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from brittle.counterfactual.runners import EngineRunner
from brittle.counterfactual.searches import Bisection, Grid, Parallel
from brittle.counterfactual.tasks import Remove
from brittle.counterfactual.tester import CounterfactualTester, Request, models_to_decide
from brittle.counterfactual.tester import TestLog as Log
from brittle.runtime.seeds import model_seed
from tests.helpers import TINY, make_cfg


def _early(pattern: tuple[bool, ...]) -> list[bool]:
    """The outcomes an early-stopped test of len(pattern) models sees, in rounds."""
    got: list[bool] = []
    while need := models_to_decide(len(pattern), got):
        got += pattern[len(got):len(got) + need]
    return got


def _settled_at(pattern: tuple[bool, ...]) -> int:
    """Reference: the first t whose prefix fixes the majority whatever the other models say."""
    n = len(pattern)
    for t in range(n + 1):
        rests = itertools.product((0, 1), repeat=n - t)
        ends = {sum(pattern[:t]) + sum(rest) > n / 2 for rest in rests}
        if len(ends) == 1:
            return t
    raise AssertionError("unreachable")


def test_every_pattern_of_five_outcomes_gets_the_full_tests_decision_from_fewer_models():
    patterns = list(itertools.product((False, True), repeat=5))
    assert len(patterns) == 32
    for pattern in patterns:
        got = _early(pattern)
        assert (np.mean(got) > 0.5) == (sum(pattern) >= 3), pattern
        assert got == list(pattern[:len(got)]) and len(got) == _settled_at(pattern), pattern
    sizes = [len(_early(p)) for p in patterns]
    # 3 models when the first 3 agree (2 of 8 patterns each way), else 4 or 5
    assert sizes.count(3) == 8 and sizes.count(4) == 12 and sizes.count(5) == 12


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 7])
def test_every_pattern_of_other_sizes_is_decided_as_the_full_test_and_in_order(n):
    for pattern in itertools.product((False, True), repeat=n):
        got = _early(pattern)
        assert (np.mean(got) > 0.5) == (np.mean(pattern) > 0.5)
        assert len(got) == _settled_at(pattern)


class _Engine:
    """A stand-in engine: a model is its seed; it classifies its target correctly when
    `correct(seed)`. Records every call to train_jobs."""

    def __init__(self, correct):
        self.correct, self.calls = correct, []
        self.train_y = torch.zeros(50, dtype=torch.long)
        self.test_x = torch.zeros(4, 1)
        self.test_y = np.zeros(4, dtype=np.int64)

    def train_jobs(self, jobs):
        self.calls.append([job.seed for job in jobs])
        return [job.seed for job in jobs]

    def logits(self, model, x):
        return torch.tensor([[1.0, 0.0] if self.correct(model) else [0.0, 2.0]])


def _outcomes_by_seed(patterns: dict[tuple[int, int], tuple[bool, ...]], seed: int = 0):
    by_seed = {model_seed(seed, t, k, rep): ok
               for (t, k), p in patterns.items() for rep, ok in enumerate(p)}
    return by_seed.__getitem__


def _tester(tmp_path: Path, engine, majority: bool, n_test: int = 5) -> CounterfactualTester:
    return CounterfactualTester(EngineRunner(engine, Remove()), Log(tmp_path / "tests.jsonl"),
                                seed=0, n_test=n_test, majority=majority)


def test_tests_of_a_round_train_together_only_as_many_models_as_can_settle_them(tmp_path):
    patterns = {(0, 8): (True, True, True, False, False), (1, 8): (True, False, True, False, False),
                (2, 8): (False, False, False, True, True), (3, 8): (True, False, False, True, True)}
    requests = [Request(t, np.arange(20), k, None) for t, k in patterns]
    engine = _Engine(_outcomes_by_seed(patterns))
    tester = _tester(tmp_path, engine, majority=True)
    fractions = tester.accuracies(requests)
    full = [np.mean(p) for p in patterns.values()]
    assert [f > 0.5 for f in fractions] == [f > 0.5 for f in full] == [True, False, False, True]
    # round 1: three models of each test; round 2: one more of each split test; round 3: the last
    assert [len(c) for c in engine.calls] == [12, 2, 2]
    assert tester.trained == 16 and tester.used == {(0, 8): 3, (1, 8): 5, (2, 8): 3, (3, 8): 5}
    assert len(Log(tmp_path / "tests.jsonl").rows) == 16   # every trained model logged
    # the full tests train all 20 and get the exact fractions
    (tmp_path / "full").mkdir()
    tester = _tester(tmp_path / "full", _Engine(_outcomes_by_seed(patterns)), majority=False)
    assert tester.accuracies(requests) == full and tester.trained == 20


def test_a_resumed_test_trains_only_the_models_its_log_lacks(tmp_path):
    pattern = (True, False, True, False, True)
    engine = _Engine(_outcomes_by_seed({(2, 4): pattern}))
    request = Request(2, np.arange(10), 4, None)
    full = _tester(tmp_path, engine, majority=False, n_test=5)
    full.accuracies([request])   # an older run's log: all 5 models
    resumed = _tester(tmp_path, engine, majority=True)
    assert resumed.accuracies([request]) == [0.6]
    assert resumed.trained == 0 and resumed.used[(2, 4)] == 5
    # interrupted after its first two models: the rerun trains models 2, 3 and 4 only
    part = tmp_path / "part"
    part.mkdir()
    log = Log(part / "tests.jsonl")
    log.extend([r for (_, t, k, rep), r in Log(tmp_path / "tests.jsonl").rows.items() if rep < 2])
    engine.calls.clear()
    again = _tester(part, engine, majority=True)
    assert again.accuracies([request]) == [0.6]
    # round 1 is models 0-2 (0 and 1 logged), then one at a time while the majority is open
    assert engine.calls == [[model_seed(0, 2, 4, rep)] for rep in (2, 3, 4)]


@pytest.mark.parametrize("search", [Bisection, Grid, Parallel])
def test_the_built_in_searches_read_tests_by_majority(search):
    assert search.majority_only


@pytest.mark.heavy
def test_a_digits_search_finds_the_same_supports_with_and_without_early_stopping(tmp_path,
                                                                                 monkeypatch):
    from brittle.pipeline import run
    overrides = [*TINY, "targets.n=4", "search.n_test=5", "search.budget=3",
                 "search.max_support=64"]
    found = {}
    for majority in (True, False):
        monkeypatch.setattr(Bisection, "majority_only", majority)
        out = tmp_path / str(majority)
        run(make_cfg(overrides, cache_dir=tmp_path / "cache"), out)
        found[majority] = (pd.read_parquet(out / "support.parquet"),
                           pd.read_parquet(out / "tests.parquet"))
    (early, early_tests), (full, full_tests) = found[True], found[False]
    assert early.drop(columns="n_models").equals(full.drop(columns="n_models"))
    assert (early["support"] >= 0).any()   # a search that flips something: its bisection has steps
    assert early["n_models"].sum() < full["n_models"].sum() == len(full_tests)
    assert early["n_models"].sum() == len(early_tests)
    # the early test's models are the full test's first ones, with the same verdicts
    keys = ["target", "k", "rep"]
    merged = early_tests.merge(full_tests, on=keys, suffixes=("", "_full"))
    assert len(merged) == len(early_tests) and (merged["correct"] == merged["correct_full"]).all()


def test_a_tests_modified_training_set_is_built_once_however_many_rounds(tmp_path):
    """The runner builds each test's training set once and hands it to every round of its
    models (the trainer groups a test's models by that identity)."""
    class Counting(Remove):
        calls = 0

        def apply(self, labels, prefix, flip_class=None):
            Counting.calls += 1
            return super().apply(labels, prefix, flip_class)

    patterns = {(1, 8): (True, False, True, False, False), (3, 8): (True, False, False, True, True)}
    engine = _Engine(_outcomes_by_seed(patterns))
    tester = CounterfactualTester(EngineRunner(engine, Counting()), Log(tmp_path / "t.jsonl"),
                                  seed=0, n_test=5, majority=True)
    tester.accuracies([Request(t, np.arange(20), k, None) for t, k in patterns])
    assert [len(c) for c in engine.calls] == [6, 2, 2] and Counting.calls == 2
