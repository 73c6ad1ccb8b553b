"""Checks of a support found (search.verify, search.refine_budget): verification on fresh seeds
that never collide with the search's, refinement that accepts only sets verified on fresh
models, resume after a kill with identical results, and the cost bound counted exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brittle.counterfactual.checks import refine
from brittle.counterfactual.lockstep import SearchTarget
from brittle.counterfactual.searches import Bisection, Checking, Grid, Parallel
from brittle.counterfactual.supports import Logs, search_supports
from brittle.counterfactual.tester import PHASE_STREAMS
from brittle.runtime.errors import BrittleError
from brittle.runtime.seeds import model_seed

K = 64


class World:
    """A stand-in runner: training image i (the ranking's i-th) adds weight[i] to the pressure
    on its target; a model misclassifies the target when the pressure of the images modified
    plus its seed's noise passes 1. The ranking's middle does not matter, so a smaller set than
    the shortest flipping prefix flips."""

    def __init__(self, noise: float = 0.05, kill_after: int | None = None):
        self.weight = np.zeros(K)
        self.weight[:8] = self.weight[40:] = 0.1
        self.weight[8:40] = 0.001
        self.noise, self.kill_after, self.seeds = noise, kill_after, []

    def verdicts(self, models):
        out = []
        for m in models:
            if self.kill_after is not None and len(self.seeds) >= self.kill_after:
                raise KeyboardInterrupt("killed")
            self.seeds.append(m.seed)
            pressure = self.weight[m.request.modified].sum()
            pressure += np.random.default_rng(m.seed).normal(0, self.noise)
            out.append((bool(pressure < 1.0), float(1.0 - pressure)))
        return out


def _items(n: int = 4) -> list[SearchTarget]:
    return [SearchTarget(t, np.arange(K), None) for t in range(n)]


def _run(tmp: Path, world, lockstep=False, search=None):
    search = search or Bisection(budget=5, n_test=5, max_support=K, verify=5, refine_budget=6)
    return search_supports(search, world, _items(), Logs.in_dir(tmp), seed=3, lockstep=lockstep)


def _logged_seeds(tmp: Path, name: str) -> set[int]:
    path = tmp / name
    return set(pd.read_json(path, lines=True)["seed"]) if path.exists() else set()


def _same_checks(a, b) -> bool:
    """The same flip rates, refined sets (or none) and models."""
    for x, y in zip(a.supports, b.supports):
        cx, cy = x.checked, y.checked
        if (cx.flip_rate, cx.models) != (cy.flip_rate, cy.models) or \
                (cx.refined is None) != (cy.refined is None):
            return False
        if cx.refined is not None and not (
                np.array_equal(cx.refined.indices, cy.refined.indices)
                and (cx.refined.flip_rate, cx.refined.tests) == (cy.refined.flip_rate,
                                                                 cy.refined.tests)):
            return False
    return True


def test_check_seeds_never_collide_with_search_seeds(tmp_path):
    _run(tmp_path, World())
    search, checks = _logged_seeds(tmp_path, "tests.jsonl"), _logged_seeds(tmp_path, "checks.jsonl")
    assert search and checks and not search & checks
    # and over every key a run can have: targets, sizes or candidate steps, replicates
    searched = {model_seed(3, t, k, r) for t in range(40) for k in range(K + 1) for r in range(5)}
    for stream in PHASE_STREAMS.values():
        checked = {model_seed(3, stream, t, k, r) for t in range(40) for k in range(K + 1)
                   for r in range(5)}
        assert not searched & checked


def test_an_accepted_refinement_is_verified_and_a_chance_flip_is_not_accepted(tmp_path):
    found = _run(tmp_path, World())
    checks = pd.read_json(tmp_path / "checks.jsonl", lines=True)
    refined = [s for s in found.supports if s.checked and s.checked.refined is not None]
    assert any(len(s.checked.refined.indices) < s.result.support for s in refined)
    for s in refined:
        mine = checks[checks["target"] == s.item.target]
        size = len(s.checked.refined.indices)
        if size < s.result.support:   # accepted: its own fresh models flip by majority
            fresh = mine[(mine["phase"] == "refine_verify") & (mine["size"] == size)]
            assert len(fresh) == 5 and fresh["correct"].mean() < 0.5
            assert s.checked.refined.flip_rate == 1 - fresh["correct"].mean()
        # every candidate that flipped but did not verify was left out
        flipped = mine[mine["phase"] == "refine"].groupby("k")["correct"].mean() <= 0.5
        for key in flipped[flipped].index:
            fresh = mine[(mine["phase"] == "refine_verify") & (mine["k"] == key)]
            assert len(fresh) == 5
            if fresh["correct"].mean() >= 0.5:
                assert size != int(fresh["size"].iloc[0]) or size == s.result.support


def test_a_kill_during_refinement_resumes_with_identical_results(tmp_path):
    whole = _run(tmp_path / "whole", World())
    total = len(pd.read_json(tmp_path / "whole" / "checks.jsonl", lines=True)) + \
        len(pd.read_json(tmp_path / "whole" / "tests.jsonl", lines=True))
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", World(kill_after=total - 9))   # inside the last refinement
    logged = len(pd.read_json(tmp_path / "cut" / "checks.jsonl", lines=True)) + \
        len(pd.read_json(tmp_path / "cut" / "tests.jsonl", lines=True))
    assert logged < total
    resumed = _run(tmp_path / "cut", World())
    assert resumed.trained == total - logged   # only what the log lacked
    assert [a.result for a in whole.supports] == [b.result for b in resumed.supports]
    assert _same_checks(whole, resumed)
    for name in ("tests.jsonl", "checks.jsonl"):
        cols = ["target", "k", "rep", "seed", "correct", "margin"]
        a, b = (pd.read_json(tmp_path / d / name, lines=True) for d in ("whole", "cut"))
        keys = [c for c in ("phase", "target", "k", "rep") if c in a.columns]
        assert a.sort_values(keys)[cols].reset_index(drop=True).equals(
            b.sort_values(keys)[cols].reset_index(drop=True))


@pytest.mark.parametrize("lockstep", [False, True])
def test_lockstep_checks_train_the_same_models(tmp_path, lockstep):
    a = _run(tmp_path / "a", World(), lockstep=False)
    b = _run(tmp_path / "b", World(), lockstep=lockstep)
    assert _same_checks(a, b)
    assert _logged_seeds(tmp_path / "a", "checks.jsonl") == \
        _logged_seeds(tmp_path / "b", "checks.jsonl")


class WorstCase:
    """Every candidate test splits its votes until its last model, which flips it; every
    verification of a candidate fails; the prefix's holds: the most models the checks can take."""

    def __init__(self, n_test: int, verify: int, budget: int, targets: int):
        self.refine_verify = {model_seed(3, PHASE_STREAMS["refine_verify"], t, j, r)
                              for t in range(targets) for j in range(budget) for r in range(verify)}
        self.refine_rep = {model_seed(3, PHASE_STREAMS["refine"], t, j, r): r
                           for t in range(targets) for j in range(budget) for r in range(n_test)}
        self.trained = 0

    def verdicts(self, models):
        self.trained += len(models)
        out = []
        for m in models:
            if m.seed in self.refine_verify:
                ok = True                                   # a candidate never verifies
            elif m.seed in self.refine_rep:
                ok = self.refine_rep[m.seed] in (0, 2)      # correct, wrong, correct, wrong, wrong
            else:
                ok = len(m.request.modified) < K // 2       # search and prefix verification
            out.append((ok, 1.0 if ok else -1.0))
        return out


@pytest.mark.parametrize("search", [Bisection(budget=4, n_test=5, max_support=K),
                                    Grid(budget=3, n_test=5, max_support=K),
                                    Parallel(width=2, budget=3, n_test=5, max_support=K)])
def test_the_cost_bound_counts_the_checks_exactly(tmp_path, search):
    verify, budget = 3, 4
    search = type(search)(**{**search.__dict__, "verify": verify, "refine_budget": budget})
    world = WorstCase(search.n_test, verify, budget, targets=4)
    found = search_supports(search, world, _items(), Logs.in_dir(tmp_path), seed=3)
    checks = len(pd.read_json(tmp_path / "checks.jsonl", lines=True))
    bound = Checking.of(search).models_per_target(search.n_test)
    assert bound == verify + budget * (search.n_test + verify)
    assert checks == 4 * bound   # the worst case reaches the bound, no more
    assert world.trained == found.trained
    # and any world stays within it
    (tmp_path / "noisy").mkdir()
    search_supports(search, World(noise=0.3), _items(), Logs.in_dir(tmp_path / "noisy"), seed=5)
    assert len(pd.read_json(tmp_path / "noisy" / "checks.jsonl", lines=True)) <= 4 * bound


def test_refinement_skips_prefixes_the_search_saw_hold():
    gen = refine(np.arange(16), 16, 0.8, budget=3, held=[12])
    asked = next(gen)
    assert asked.phase == "refine" and len(asked.indices) == 12
    # the quarter cut from the end would be ranking[:12], which held in the search: never asked
    sizes = [len(asked.indices)]
    try:
        while True:
            asked = gen.send(1.0)   # held
            sizes.append(len(asked.indices))
    except StopIteration as stop:
        assert len(stop.value.indices) == 16 and stop.value.tests == 3
    assert all(not np.array_equal(np.arange(12), x) for x in [np.arange(s) for s in sizes[3:]])


@pytest.mark.parametrize("kwargs,message", [
    ({"verify": -1}, "search.verify=-1 is out of range"),
    ({"refine_budget": -2}, "search.refine_budget=-2 is out of range"),
    ({"refine_budget": 4}, "search.refine_budget=4 needs search.verify >= 1")])
def test_bad_check_settings_are_one_line(kwargs, message):
    with pytest.raises(BrittleError, match=message):
        Bisection(**kwargs)
