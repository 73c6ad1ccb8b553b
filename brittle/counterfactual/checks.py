"""Checks of the supports a search found: verification with fresh models, and refinement of a
verified support below the ranking's prefix.

The paper's support is the shortest prefix of a ranking whose modification flips a majority of
N_test retrained models. Near the boundary a test flips with probability near 1/2, and a search
keeps the *smallest* k that flipped among its tests, so a chance flip is the likeliest to be
reported. Two checks, each on models of seed streams of their own (never a search model's seed,
brittle/counterfactual/tester.py: PHASE_STREAMS):

- verification (`search.verify=N`): the found prefix is tested again with N fresh models, all N
  trained; its flip rate is the fraction that misclassify the target, and the support *holds* when
  that is above 1/2 (the search's own criterion, on independent models);
- refinement (`search.refine_budget=T`): starting from a support that holds, chunked backward
  elimination (the ddmin rule of delta debugging) looks for a smaller set inside it: the set is
  cut into g chunks in ranking order, and the set without one chunk is tested (N_test models,
  majority stop); a candidate that flips is verified with N fresh models and accepted only if
  that holds too, so many tries cannot turn chance into a finding. It starts at g = 4 (a quarter
  of the set at a time: halves of a support bisection just found rarely go); after an acceptance
  the same cut is tried again on the smaller set (g - 1 chunks, at least 2); when no chunk can go,
  the chunks are halved (2g). A candidate that is a prefix no longer than one the search saw hold
  is skipped without a test. T counts candidate tests; each acceptance adds its verification.

Each check is a generator that yields the tests it needs (`Ask`) and is sent their answers, so a
driver can run targets one after another or every target's next tests together (lockstep), with
the same models and results either way.
"""
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from brittle.counterfactual.tester import CounterfactualTester, Request


@dataclass(frozen=True)
class Ask:
    """A test a check needs: `phase` refine (answer: fraction of models still correct, by
    majority) or refine_verify (answer: the same over all N fresh models); `key` names it."""
    phase: str
    indices: np.ndarray   # int64 [M]: the training images the task modifies, in ranking order
    key: int


@dataclass(frozen=True)
class Refined:
    """A refinement's outcome: the smallest set accepted (the prefix when none was), its flip
    rate on fresh models, and the candidate tests made."""
    indices: np.ndarray   # int64 [R]
    flip_rate: float
    tests: int


Refinement = Generator[Ask, float, Refined]


def refine(ranking: np.ndarray, support: int, flip_rate: float, budget: int,
           held: Sequence[int]) -> Refinement:
    """Chunked backward elimination from the prefix ranking[:support] (verified, `flip_rate`),
    within `budget` candidate tests; `held`: prefix sizes the search saw hold."""
    current, rate, tests, chunks = np.asarray(ranking[:support], np.int64), flip_rate, 0, 4
    longest_held = max((int(k) for k in held), default=0)
    while tests < budget and len(current) >= 2:
        accepted = False
        for part in np.array_split(np.arange(len(current)), min(chunks, len(current))):
            candidate = np.delete(current, part)
            if _known_to_hold(candidate, ranking, longest_held):
                continue
            if tests >= budget:
                break
            tests += 1
            if (yield Ask("refine", candidate, tests - 1)) > 0.5:
                continue
            fresh = 1.0 - (yield Ask("refine_verify", candidate, tests - 1))
            if fresh > 0.5:
                current, rate, accepted = candidate, fresh, True
                chunks = max(chunks - 1, 2)
                break
        if not accepted:
            if chunks >= len(current):
                break
            chunks = min(2 * chunks, len(current))
    return Refined(current, rate, tests)


def _known_to_hold(candidate: np.ndarray, ranking: np.ndarray, longest_held: int) -> bool:
    """A prefix of the ranking no longer than one the search saw hold (monotone, as the
    search's bisection assumes)."""
    n = len(candidate)
    return n <= longest_held and np.array_equal(candidate, ranking[:n])


@dataclass
class CheckTesters:
    """The testers of the three check phases (verify and refine_verify: all N fresh models;
    refine: N_test models, majority stop)."""
    verify: CounterfactualTester
    refine: CounterfactualTester
    refine_verify: CounterfactualTester

    def of(self, phase: str) -> CounterfactualTester:
        return getattr(self, phase)


@dataclass(frozen=True)
class CheckItem:
    """One target to check: its ranking int [K], support found (NOT_FOUND: nothing to check),
    flip class, and the prefix sizes its search saw hold."""
    target: int
    ranking: np.ndarray
    support: int
    flip_class: int | None
    held: tuple[int, ...]


@dataclass(frozen=True)
class Checked:
    """A target's checks: the verified flip rate of its prefix support (None: not checked), and
    its refinement (None: not run, or the prefix did not hold)."""
    flip_rate: float | None
    refined: Refined | None
    models: int


def verify_all(testers: CheckTesters, items: Sequence[CheckItem]) -> dict[int, float]:
    """Each found support's flip rate on the verify tester's fresh models, all targets in one
    call (their models train together where the runner can): {item index: flip rate}."""
    todo = [(i, it) for i, it in enumerate(items) if it.support >= 1]
    accs = testers.verify.accuracies([Request(it.target, it.ranking, it.support, it.flip_class)
                                      for _, it in todo])
    return {i: 1.0 - a for (i, _), a in zip(todo, accs)}


def refine_all(testers: CheckTesters, items: Sequence[CheckItem], rates: dict[int, float],
               budget: int, lockstep: bool) -> dict[int, Refined]:
    """Refine every support that holds (flip rate > 1/2), target after target or in lockstep
    rounds (every target's next test together); the same models either way."""
    gens = {i: refine(items[i].ranking, items[i].support, rates[i], budget, items[i].held)
            for i in sorted(rates) if rates[i] > 0.5}
    done: dict[int, Refined] = {}
    if lockstep:
        _drive(gens, items, testers, done)
    else:
        for i, gen in gens.items():
            _drive({i: gen}, items, testers, done)
    return done


def _drive(gens: dict[int, Refinement], items: Sequence[CheckItem], testers: CheckTesters,
           done: dict[int, Refined]) -> None:
    """Run the generators round by round: each round, every live one's next test, one tester
    call per phase."""
    pending = {i: _step(gen, None, done, i) for i, gen in gens.items()}
    while pending := {i: a for i, a in pending.items() if a is not None}:
        answers: dict[int, float] = {}
        for phase in ("refine", "refine_verify"):
            asked = [(i, a) for i, a in sorted(pending.items()) if a.phase == phase]
            if asked:
                accs = testers.of(phase).accuracies([_request(items[i], a) for i, a in asked])
                answers.update({i: acc for (i, _), acc in zip(asked, accs)})
        pending = {i: _step(gens[i], answers[i], done, i) for i in pending}


def _step(gen: Refinement, answer: float | None, done: dict[int, Refined], i: int) -> Ask | None:
    try:
        return gen.send(answer) if answer is not None else next(gen)
    except StopIteration as stop:
        done[i] = stop.value
        return None


def _request(item: CheckItem, ask: Ask) -> Request:
    return Request(item.target, ask.indices, len(ask.indices), item.flip_class, key=ask.key)


def check_models(testers: CheckTesters, target: int) -> int:
    """The models a target's checks rest on (every phase's `used` for it)."""
    return sum(n for phase in ("verify", "refine", "refine_verify")
               for (t, _), n in testers.of(phase).used.items() if t == int(target))


def run_checks(testers: CheckTesters, items: Sequence[CheckItem], budget: int,
               lockstep: bool, finished: Callable[[int, Checked], None] | None = None
               ) -> list[Checked]:
    """Verify every found support, then refine those that hold (budget > 0)."""
    rates = verify_all(testers, items)
    refined = refine_all(testers, items, rates, budget, lockstep) if budget > 0 else {}
    out = [Checked(rates.get(i), refined.get(i), check_models(testers, it.target))
           for i, it in enumerate(items)]
    for i, checked in enumerate(out):
        if finished is not None:
            finished(i, checked)
    return out
