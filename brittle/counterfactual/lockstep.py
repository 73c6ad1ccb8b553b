"""Lockstep search: every target's search advances together, round by round.

A `Search` is written against a blocking oracle (`run(accuracy_at)`), one target at a time. Here
each target's search runs in a thread of its own whose oracle only posts the test it needs and
waits; when every unfinished search waits, the round's tests (in target order) go to the tester
at once, which trains all their models together where the trainer can (stacked MLPs on a CPU),
and each search gets its answer and moves on. Threads only run the searches' bookkeeping: every
model trains in the calling thread. Which models train is unchanged (seeds are per target, k and
replicate); only when.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from brittle.counterfactual.searches import Search, SearchResult
from brittle.counterfactual.tester import CounterfactualTester, Request


@dataclass(frozen=True)
class SearchTarget:
    """One target's search: its test index, ranking int [K] and flip class (mislabel) or None."""
    target: int
    ranking: np.ndarray
    flip_class: int | None


class _Aborted(Exception):
    """Raised in a waiting search when the round's training failed."""


class _Oracle:
    """A target's oracle: `k -> accuracy`, and `many(ks)` for the tests of one round."""

    def __init__(self, ask: Callable[[list[int]], list[float]]):
        self._ask = ask

    def __call__(self, k: int) -> float:
        return self._ask([int(k)])[0]

    def many(self, ks: Sequence[int]) -> list[float]:
        return self._ask([int(k) for k in ks])


class _Rounds:
    """The meeting point of the search threads (post a round's tests, wait for the answers)
    and the training thread (collect a full round, hand back its answers)."""

    def __init__(self, n: int):
        self.cond = threading.Condition()
        self.pending: dict[int, list[int]] = {}
        self.answers: dict[int, list[float]] = {}
        self.running, self.aborted = n, False
        self.error: BaseException | None = None

    def ask(self, i: int, ks: list[int]) -> list[float]:
        with self.cond:
            self.pending[i] = ks
            self.cond.notify_all()
            while i not in self.answers:
                if self.aborted:
                    raise _Aborted
                self.cond.wait()
            return self.answers.pop(i)

    def done(self, error: BaseException | None = None) -> None:
        with self.cond:
            self.running -= 1
            if error is not None and not isinstance(error, _Aborted) and self.error is None:
                self.error = error
            self.cond.notify_all()

    def next_round(self) -> list[tuple[int, list[int]]] | None:
        """Every unfinished search's tests once all of them wait; None when all have finished."""
        with self.cond:
            while len(self.pending) < self.running and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise self.error
            if self.running == 0:
                return None
            batch = sorted(self.pending.items())
            self.pending.clear()
            return batch

    def answer(self, batch: list[tuple[int, list[int]]], accuracies: list[float]) -> None:
        with self.cond:
            pos = 0
            for i, ks in batch:
                self.answers[i] = accuracies[pos:pos + len(ks)]
                pos += len(ks)
            self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.aborted = True
            self.cond.notify_all()


def search_lockstep(search: Search, tester: CounterfactualTester, items: Sequence[SearchTarget],
                    finished: Callable[[int, SearchResult], None]) -> int:
    """Run `search` for every target of `items` in lockstep; `finished(i, result)` is called (in
    this thread) as each ends. Returns the number of rounds."""
    rounds = _Rounds(len(items))
    results: dict[int, SearchResult] = {}

    def work(i: int) -> None:
        try:
            results[i] = search.run(_Oracle(lambda ks: rounds.ask(i, ks)))
        except BaseException as exc:  # handed to the training thread, which raises it
            rounds.done(exc)
        else:
            rounds.done()

    threads = [threading.Thread(target=work, args=(i,), name=f"search-{q.target}", daemon=True)
               for i, q in enumerate(items)]
    for t in threads:
        t.start()
    reported: set[int] = set()
    n_rounds = 0
    try:
        while (batch := rounds.next_round()) is not None:
            _report(results, reported, finished)
            requests = [Request(items[i].target, items[i].ranking, k, items[i].flip_class)
                        for i, ks in batch for k in ks]
            rounds.answer(batch, tester.accuracies(requests))
            n_rounds += 1
    except BaseException:
        rounds.abort()
        raise
    for t in threads:
        t.join()
    _report(results, reported, finished)
    return n_rounds


def _report(results: dict[int, SearchResult], reported: set[int],
            finished: Callable[[int, SearchResult], None]) -> None:
    """Hand each newly finished search to `finished`, in target order."""
    for i in sorted(set(results) - reported):
        reported.add(i)
        finished(i, results[i])
