"""Searches over prefix size k of a ranking for the smallest k whose modification flips a target.

A search is given an oracle `k -> fraction of N_test retrained models that still classify the
target correctly` and returns a `SearchResult`. NOT_FOUND (-1) means even max_support does not flip.
The built-in searches read that fraction only as `> 0.5` (`majority_only`), so their tests stop
training once the majority is settled (brittle/counterfactual/tester.py).
The oracle may also offer `many(ks) -> fractions` for tests a search makes in one round (the
lockstep search stage's does); a search that has such rounds asks for them together.
`lockstep` (every search's setting) is read by the search stage: all targets' next tests train
together; it changes when models train, never which (an execution setting, not part of a run's
identity). `verify` and `refine_budget` (every built-in search's) ask for the checks of what the
search found (brittle/counterfactual/checks.py); 0 is off, the paper presets' setting.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from brittle.runtime.errors import BrittleError

NOT_FOUND = -1


@dataclass(frozen=True)
class SearchResult:
    support: int                      # smallest flipping k found, or NOT_FOUND
    steps: list[tuple[int, float]] = field(default_factory=list)  # (k, accuracy) in order
    rounds: int | None = None         # sequential rounds (None: one test per round)

    @property
    def n_tests(self) -> int:
        return len(self.steps)

    @property
    def n_rounds(self) -> int:
        return self.rounds if self.rounds is not None else len(self.steps)


@dataclass(frozen=True)
class Checking:
    """`search.verify` (fresh models per check; 0: off) and `search.refine_budget` (candidate
    tests per target; 0: off; needs verify >= 1: every accepted set is verified)."""
    verify: int = 0
    refine_budget: int = 0

    def __post_init__(self) -> None:
        if self.verify < 0:
            raise BrittleError(f"search.verify={self.verify} is out of range; use 0 (off) or "
                               f"a number of fresh models >= 1")
        if self.refine_budget < 0:
            raise BrittleError(f"search.refine_budget={self.refine_budget} is out of range; use "
                               f"0 (off) or a number of tests >= 1")
        if self.refine_budget and not self.verify:
            raise BrittleError(f"search.refine_budget={self.refine_budget} needs search.verify "
                               f">= 1: every set a refinement accepts is verified with fresh "
                               f"models")

    @classmethod
    def of(cls, search: Search) -> Checking:
        """A search's settings (a user's search without them: no checks)."""
        return cls(int(getattr(search, "verify", 0) or 0),
                   int(getattr(search, "refine_budget", 0) or 0))

    def models_per_target(self, n_test: int) -> int:
        """The most models a target's checks train: its verification, then per candidate test
        N_test models and, when it flips, its verification."""
        return self.verify + self.refine_budget * (n_test + self.verify) if self.verify else 0


class Search(ABC):
    """A `search=` option: finds a target's support from an oracle `k -> fraction of the
    `n_test` models of a test at k that still classify the target correctly`, up to max_support."""

    n_test: int
    max_support: int
    lockstep: bool = False   # a user's search without the setting runs target after target
    verify: int = 0          # fresh models that test the support found again (0: no checks)
    refine_budget: int = 0   # candidate tests that look for a smaller set inside it (0: none)
    # True: the search reads a test only as `accuracy > 0.5` (its majority), so a test's training
    # stops once the majority is settled, and the fraction it gets is over the models trained (on
    # the same side of 0.5 as over all n_test). False (a user's search): full tests, exact fractions
    majority_only: ClassVar[bool] = False

    @abstractmethod
    def run(self, accuracy_at: Callable[[int], float]) -> SearchResult:
        """The smallest flipping k found (or NOT_FOUND) and the tests made, in order."""

    def max_tests(self) -> int | None:
        """The most counterfactual tests one target can take (a run's cost bound); None: unknown."""
        return None


@dataclass(frozen=True)
class Bisection(Search):
    """The paper's fixed-budget bisection (its Algorithm 1; docs/algorithm.md): one test at
    max_support, then `budget` halvings; resolution max_support / 2**budget."""
    budget: int = 7
    n_test: int = 5
    max_support: int = 1280
    lockstep: bool = False
    verify: int = 0
    refine_budget: int = 0
    majority_only: ClassVar[bool] = True   # decides by `accuracy > 0.5` alone

    def __post_init__(self) -> None:
        Checking(self.verify, self.refine_budget)   # their range checks
        if not 0 <= self.budget <= 30:
            raise BrittleError(f"search.budget={self.budget} is out of range; use 0..30")
        if self.n_test < 1:
            raise BrittleError(f"search.n_test={self.n_test} is out of range; use >= 1")
        if self.max_support < 1:
            raise BrittleError(f"search.max_support={self.max_support} is out of range; use >= 1")

    def max_tests(self) -> int:
        return 1 + self.budget

    def run(self, accuracy_at: Callable[[int], float]) -> SearchResult:
        steps = [(self.max_support, accuracy_at(self.max_support))]
        if steps[0][1] > 0.5:
            return SearchResult(NOT_FOUND, steps)
        lo, hi, best = 0, self.max_support, self.max_support
        for _ in range(self.budget):
            mid = (lo + hi) // 2
            acc = accuracy_at(mid)
            steps.append((mid, acc))
            if acc > 0.5:
                lo = mid
            else:
                hi = mid
                best = min(best, mid)
        return SearchResult(best, steps)


@dataclass(frozen=True)
class Grid(Search):
    """Fixed prefix sizes in increasing order, stopping at the first that flips (the evaluation
    of Datamodels and dattri). `sizes` defaults to max_support / 2^i, i = budget..0."""
    sizes: tuple[int, ...] | None = None
    budget: int = 7
    n_test: int = 5
    max_support: int = 1280
    lockstep: bool = False
    verify: int = 0
    refine_budget: int = 0
    majority_only: ClassVar[bool] = True   # decides by `accuracy > 0.5` alone

    def __post_init__(self) -> None:
        # the same range checks
        Bisection(self.budget, self.n_test, self.max_support, verify=self.verify,
                  refine_budget=self.refine_budget)
        for s in self.grid():
            if not 1 <= s <= self.max_support:
                raise BrittleError(f"search.sizes contains {s}; use sizes in 1..{self.max_support}")

    def max_tests(self) -> int:
        return len(self.grid())

    def grid(self) -> list[int]:
        if self.sizes:
            return sorted({int(s) for s in self.sizes})
        return sorted({max(1, self.max_support >> i) for i in range(self.budget, -1, -1)})

    def run(self, accuracy_at: Callable[[int], float]) -> SearchResult:
        steps = []
        for k in self.grid():
            steps.append((k, accuracy_at(k)))
            if steps[-1][1] <= 0.5:
                return SearchResult(k, steps)
        return SearchResult(NOT_FOUND, steps)


@dataclass(frozen=True)
class Parallel(Search):
    """k-ary search: after the test at max_support, each round tests `width` evenly spaced sizes
    inside the current bracket at once (they can train concurrently), until the bracket is as
    narrow as bisection's resolution ceil(max_support / 2^budget). Fewer sequential rounds than
    bisection for width > 1, at the price of more models."""
    width: int = 3
    budget: int = 7
    n_test: int = 5
    max_support: int = 1280
    lockstep: bool = False
    verify: int = 0
    refine_budget: int = 0
    majority_only: ClassVar[bool] = True   # decides by `accuracy > 0.5` alone

    def __post_init__(self) -> None:
        Bisection(self.budget, self.n_test, self.max_support, verify=self.verify,
                  refine_budget=self.refine_budget)
        if self.width < 1:
            raise BrittleError(f"search.width={self.width} is out of range; use >= 1")

    @property
    def resolution(self) -> int:
        return max(1, -(-self.max_support // 2 ** self.budget))

    def probes(self, lo: int, hi: int) -> list[int]:
        """The sizes one round tests inside the bracket (lo, hi)."""
        inside = {lo + (hi - lo) * i // (self.width + 1) for i in range(1, self.width + 1)}
        return sorted(inside - {lo, hi})

    def max_tests(self) -> int:
        """The test at max_support, then every round's probes while the widest bracket a round
        can leave stays wider than the resolution (the worst case)."""
        tests, span = 1, self.max_support
        while span > self.resolution:
            edges = [0, *self.probes(0, span), span]
            tests += len(edges) - 2
            span = max(b - a for a, b in zip(edges, edges[1:]))
        return tests

    def run(self, accuracy_at: Callable[[int], float]) -> SearchResult:
        steps = [(self.max_support, accuracy_at(self.max_support))]
        if steps[0][1] > 0.5:
            return SearchResult(NOT_FOUND, steps, rounds=1)
        lo, hi, rounds = 0, self.max_support, 1
        while hi - lo > self.resolution:
            probes = self.probes(lo, hi)
            # one round: independent tests, asked for together when the oracle can (lockstep search)
            many = getattr(accuracy_at, "many", None)
            results = (list(zip(probes, many(probes))) if many
                       else [(k, accuracy_at(k)) for k in probes])
            steps += results
            rounds += 1
            flipped = [k for k, acc in results if acc <= 0.5]
            if flipped:
                hi = min(flipped)
            held = [k for k, acc in results if acc > 0.5 and k < hi]
            if held:
                lo = max(held)
        return SearchResult(hi, steps, rounds=rounds)
