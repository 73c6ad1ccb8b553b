"""Searches over prefix size k of a ranking for the smallest k whose modification flips a target.

A search is given an oracle `k -> fraction of N_test retrained models that still classify the
target correctly` and returns a `SearchResult`. NOT_FOUND (-1) means even max_support does not flip.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from brittle.errors import BrittleError

NOT_FOUND = -1


@dataclass(frozen=True)
class SearchResult:
    support: int                      # smallest flipping k found, or NOT_FOUND
    steps: list[tuple[int, float]] = field(default_factory=list)  # (k, accuracy) in order

    @property
    def n_tests(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Bisection:
    """The paper's fixed-budget bisection (its Algorithm 1; DESIGN.md section 2): one test at
    max_support, then `budget` halvings; resolution max_support / 2**budget."""
    budget: int = 7
    n_test: int = 5
    max_support: int = 1280

    def __post_init__(self) -> None:
        if not 0 <= self.budget <= 30:
            raise BrittleError(f"search.budget={self.budget} is out of range; use 0..30")
        if self.n_test < 1:
            raise BrittleError(f"search.n_test={self.n_test} is out of range; use >= 1")
        if self.max_support < 1:
            raise BrittleError(f"search.max_support={self.max_support} is out of range; use >= 1")

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
