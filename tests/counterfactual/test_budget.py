"""A run's cost bound: `Search.max_tests` is the most tests any target can take (checked against
every threshold of monotone oracles, and reached by one), and the plan's arithmetic and wording."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brittle.counterfactual.budget import TrainingPlan, shard_size
from brittle.counterfactual.searches import Bisection, Grid, Parallel


def count_tests(search, threshold: int) -> int:
    """Tests a search makes against 'accuracy 1 below `threshold`, 0 from it on'."""
    calls: list[int] = []

    def accuracy(k: int) -> float:
        calls.append(k)
        return 1.0 if k < threshold else 0.0
    search.run(accuracy)
    return len(calls)


def worst_case(search) -> int:
    return max(count_tests(search, t) for t in range(0, search.max_support + 2))


@settings(max_examples=60, deadline=None)
@given(K=st.integers(1, 300), B=st.integers(0, 9), width=st.integers(1, 6))
def test_max_tests_is_the_worst_case_of_every_search(K, B, width):
    for search in (Bisection(budget=B, max_support=K), Grid(budget=B, max_support=K),
                   Parallel(width=width, budget=B, max_support=K)):
        assert worst_case(search) == search.max_tests(), search


def test_the_paper_bisection_takes_one_plus_budget_tests():
    assert Bisection(budget=7, max_support=1280).max_tests() == 8
    assert Grid(sizes=(1, 5, 9), max_support=16).max_tests() == 3


@pytest.mark.parametrize("n,num_shards", [(10, 1), (10, 3), (7, 4), (2, 5)])
def test_shard_size_counts_the_targets_a_shard_searches(n, num_shards):
    for shard in range(num_shards):
        assert shard_size(n, shard, num_shards) == len(list(range(n))[shard::num_shards])


def test_plan_states_its_parts_and_time_only_when_every_part_was_timed():
    plan = TrainingPlan()
    plan.add("search", 400, "10 targets x 8 tests x 5", seconds_per_model=3.0)
    plan.add("reference", 3)
    plan.add("LDS bank", 0, seconds_per_model=1.0)   # cached: not shown, costs nothing
    assert plan.total == 403 and plan.seconds() is None
    assert plan.describe() == ("at most 403 models to train (search 10 targets x 8 "
                               "tests x 5 = 400, reference 3); the time shows once the first "
                               "models are trained (never timed on this device)")
    plan.add("reference", 3, seconds_per_model=2.0)
    assert plan.seconds() == 400 * 3.0 + 3 * 2.0
    assert plan.describe().endswith("; ~ 20 min at the seconds per model measured on this "
                                    "device before")
