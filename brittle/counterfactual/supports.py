"""Supports of many targets, whoever trains the models: the configured search for each target
(target after target, or every target's next tests together: lockstep), then the checks of what
it found (verification and refinement, brittle/counterfactual/checks.py), every model logged
durably so an interrupted run resumes without retraining what it had.

Used by the search stage (brittle's engine as the runner) and by `brittle.api.find_supports`
(a user's own training function). `search_supports` returns one `TargetSupport` per target.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brittle.counterfactual.checks import Checked, CheckItem, CheckTesters, run_checks
from brittle.counterfactual.lockstep import SearchTarget, search_lockstep
from brittle.counterfactual.searches import Checking, Search, SearchResult
from brittle.counterfactual.tester import (
    CounterfactualTester,
    Runner,
    TestLog,
    models_of,
    search_target,
)


@dataclass(frozen=True)
class TargetSupport:
    """A target's search result, the models its decisions rest on, and its checks."""
    item: SearchTarget
    result: SearchResult
    n_models: int
    checked: Checked | None = None


@dataclass(frozen=True)
class Logs:
    """Where the models go: the search's tests and the checks' (both JSON lines, resumable)."""
    tests: TestLog
    checks: TestLog

    @classmethod
    def in_dir(cls, directory: Path) -> Logs:
        Path(directory).mkdir(parents=True, exist_ok=True)
        return cls(TestLog(Path(directory) / "tests.jsonl"),
                   TestLog(Path(directory) / "checks.jsonl"))


@dataclass
class Searched:
    """All targets' supports (in the items' order), models trained in this process, rounds."""
    supports: list[TargetSupport]
    trained: int
    rounds: int


def search_supports(search: Search, runner: Runner, items: Sequence[SearchTarget], logs: Logs,
                    seed: int, lockstep: bool = False,
                    on_target: Callable[[int, TargetSupport, int], None] | None = None
                    ) -> Searched:
    """Every target's support by `search`, then its checks; `on_target(i, support, trained so
    far)` as each target's search finishes (and again, with its checks, when they end)."""
    tester = CounterfactualTester(runner, logs.tests, seed, int(search.n_test),
                                  majority=bool(getattr(search, "majority_only", False)))
    found: dict[int, TargetSupport] = {}

    def finished(i: int, result: SearchResult) -> None:
        found[i] = TargetSupport(items[i], result, models_of(tester, items[i].target, result))
        if on_target is not None:
            on_target(i, found[i], tester.trained)

    rounds = 0
    if lockstep:
        rounds = search_lockstep(search, tester, items, finished)
    else:
        for i, q in enumerate(items):
            result = search_target(search, tester, q.target, q.ranking, q.flip_class)
            rounds += result.n_rounds
            finished(i, result)
    supports = [found[i] for i in range(len(items))]
    checking = Checking.of(search)
    trained = tester.trained
    if checking.verify:
        testers = _check_testers(runner, logs.checks, seed, int(search.n_test), checking.verify)
        checked = run_checks(testers, [_check_item(s) for s in supports],
                             checking.refine_budget, lockstep)
        supports = [TargetSupport(s.item, s.result, s.n_models, c)
                    for s, c in zip(supports, checked)]
        trained += sum(t.trained for t in (testers.verify, testers.refine, testers.refine_verify))
    return Searched(supports, trained, rounds)


def _check_testers(runner: Runner, log: TestLog, seed: int, n_test: int,
                   verify: int) -> CheckTesters:
    def tester(phase: str, n: int, majority: bool) -> CounterfactualTester:
        return CounterfactualTester(runner, log, seed, n, majority=majority, phase=phase)
    return CheckTesters(tester("verify", verify, False), tester("refine", n_test, True),
                        tester("refine_verify", verify, False))


def _check_item(s: TargetSupport) -> CheckItem:
    held = tuple(int(k) for k, acc in s.result.steps if acc > 0.5)
    return CheckItem(s.item.target, s.item.ranking, int(s.result.support), s.item.flip_class,
                     held)


def support_row(s: TargetSupport, label: int) -> dict:
    """A target's support.parquet row: support and the models its decisions rest on; with
    checks, the verified flip rate and whether it holds, the refined support and its flip rate
    (-1 / NaN where not checked), and the checks' models."""
    row: dict[str, object] = {"target": s.item.target, "label": int(label),
                              "support": int(s.result.support), "n_models": int(s.n_models)}
    if s.item.flip_class is not None:
        row["flip_class"] = s.item.flip_class
    if s.checked is not None:
        rate, refined = s.checked.flip_rate, s.checked.refined
        row.update(verified_flip_rate=np.nan if rate is None else float(rate),
                   holds=bool(rate is not None and rate > 0.5),
                   refined_support=-1 if refined is None else len(refined.indices),
                   refined_flip_rate=np.nan if refined is None else float(refined.flip_rate),
                   check_models=int(s.checked.models))
    return row
