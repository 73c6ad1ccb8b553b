"""Counterfactual tests (retrain N_test models on a modified training set) driven by
the configured search, with every trained model appended durably to the run's test log.

A search that only asks whether the majority of a test's models still classify the target
correctly (`Search.majority_only`) gets tests that stop early: the models train in replicate order,
round by round, each round only as many as could still settle the majority (`models_to_decide`),
so a test of 5 models takes 3 when the first 3 agree. The decision is the full test's; the
fraction returned is over the models trained, which is on the same side of 0.5 as the full one.

Who trains and judges the models is a `Runner` (brittle/counterfactual/runners.py): brittle's
retraining engine, or a user's own training function (brittle/counterfactual/supports.py). A
tester has a `phase`: the search's own tests (`search`, seeded by (run seed, target, k,
replicate)) or the checks of a support found (`verify`, `refine`, `refine_verify`:
brittle/counterfactual/checks.py), each seeded from a stream of its own, so no check ever
reuses a search model's seed.

The log gets one line per trained model, flushed and fsynced once per round of training
(before the next round starts); a rerun reads it back and retrains only models that are not there,
so an interrupted search resumes where it stopped and gives the same table as an uninterrupted one.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from brittle.counterfactual.searches import Search, SearchResult
from brittle.runtime.seeds import Stream, model_seed

TEST_COLUMNS = ["target", "k", "rep", "seed", "correct", "margin", "seconds"]
CHECK_COLUMNS = ["phase", "target", "k", "size", "rep", "seed", "correct", "margin", "seconds"]
# the seed stream of each phase but the search's (whose seeds are (run seed, target, k, rep))
PHASE_STREAMS = {"verify": Stream.VERIFY, "refine": Stream.REFINE,
                 "refine_verify": Stream.REFINE_VERIFY}

Key = tuple[str, int, int, int]   # (phase, target, k, replicate)


def _key(row: dict) -> Key:
    return (row.get("phase", "search"), int(row["target"]), int(row["k"]), int(row["rep"]))


class TestLog:
    """Append-only JSON-lines log of trained models, keyed by (phase, target, k, rep); rows of
    the search's own tests carry no phase."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[Key, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        good = 0
        with open(self.path, "rb") as f:
            data = f.read()
        for line in data.split(b"\n"):
            try:
                row = json.loads(line)
            except ValueError:
                break  # a torn last line from a crash mid-write: everything before it is good
            self.rows[_key(row)] = row
            good += len(line) + 1
        if good < len(data):  # drop the torn tail so later appends start on a clean line
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def get(self, target: int, k: int, rep: int, phase: str = "search") -> dict | None:
        return self.rows.get((phase, int(target), int(k), int(rep)))

    def extend(self, rows: Sequence[dict]) -> None:
        """Append rows in one write and one fsync (a round's models are all trained by then)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))
            f.flush()
            os.fsync(f.fileno())
        for row in rows:
            self.rows[_key(row)] = row

    def frame(self, phase: str = "search") -> pd.DataFrame:
        """The rows of one phase, sorted by (target, k, rep): tests.parquet for the search's."""
        rows = sorted((r for key, r in self.rows.items() if key[0] == phase),
                      key=lambda r: (r["target"], r["k"], r["rep"]))
        columns = TEST_COLUMNS if phase == "search" else CHECK_COLUMNS
        return pd.DataFrame(rows, columns=columns)


def models_to_decide(n_test: int, outcomes: Sequence[bool]) -> int:
    """How many more models a test of `n_test` trains before its majority is settled, given the
    outcomes (classified correctly or not) of its first models: 0 once more than half are correct
    (accuracy > 0.5: held) or at least half are wrong (accuracy <= 0.5: flipped), else the fewest
    more that could settle it, so no round trains a model the test in order would not."""
    correct = sum(bool(o) for o in outcomes)
    wrong = len(outcomes) - correct
    return max(0, min(n_test // 2 + 1 - correct, (n_test + 1) // 2 - wrong))


@dataclass(frozen=True)
class Request:
    """One counterfactual test: `target`'s ranking (int [K]) modified up to prefix `k`. `key`
    names the test in its log and seeds when it is not its size (a refinement's candidate sets:
    several of one size); default k."""
    target: int
    ranking: np.ndarray
    k: int
    flip_class: int | None
    key: int | None = None

    @property
    def test(self) -> int:
        return int(self.k if self.key is None else self.key)

    @property
    def modified(self) -> np.ndarray:
        """The training images the task modifies: int64 [k]."""
        return np.asarray(self.ranking[:self.k], dtype=np.int64)


@dataclass(frozen=True)
class Model:
    """One model to train for a test: its request and seed (a runner's unit of work)."""
    request: Request
    seed: int


class Runner(Protocol):
    """Trains models on their tests' modified training sets and judges each on its target:
    (classified correctly, margin) per model, in order (brittle/counterfactual/runners.py)."""

    def verdicts(self, models: Sequence[Model]) -> list[tuple[bool, float]]: ...


@dataclass
class CounterfactualTester:
    """The oracle of a search or a check: k -> fraction of n_test models still classifying the
    target correctly; with `majority`, of the models trained until the majority was settled.
    `used[(target, key)]`: the models each test's answer rests on; `trained`: models trained
    in this process."""
    runner: Runner
    log: TestLog
    seed: int
    n_test: int
    majority: bool = False
    phase: str = "search"
    trained: int = 0
    used: dict[tuple[int, int], int] = field(default_factory=dict)

    def accuracy(self, target: int, ranking: np.ndarray, k: int, flip_class: int | None) -> float:
        return self.accuracies([Request(target, ranking, k, flip_class)])[0]

    def accuracies(self, requests: list[Request]) -> list[float]:
        """Each test's fraction of models still classifying its target correctly. Round by round,
        every unsettled test's next models (in replicate order) that the log lacks are trained
        together, across tests where the runner can, and logged before they are read."""
        outcomes: list[list[bool]] = [[] for _ in requests]
        while True:
            wanted = [range(len(o), len(o) + self._still_needed(o)) for o in outcomes]
            if not any(wanted):
                break
            self._train_missing(requests, wanted)
            for r, reps, got in zip(requests, wanted, outcomes):
                got += [bool(self.log.rows[(self.phase, int(r.target), r.test, rep)]["correct"])
                        for rep in reps]
        for r, got in zip(requests, outcomes):
            self.used[(int(r.target), r.test)] = len(got)
        return [float(np.mean(got)) for got in outcomes]

    def model_seed(self, target: int, test: int, rep: int) -> int:
        """The seed of replicate `rep` of a test: the search's (run seed, target, k, rep), a
        check's (run seed, its phase's stream, target, key, rep)."""
        if self.phase == "search":
            return model_seed(self.seed, target, test, rep)
        return model_seed(self.seed, PHASE_STREAMS[self.phase], target, test, rep)

    def _still_needed(self, outcomes: list[bool]) -> int:
        if self.majority:
            return models_to_decide(self.n_test, outcomes)
        return self.n_test - len(outcomes)

    def _train_missing(self, requests: list[Request], wanted: list[range]) -> None:
        """Train, judge and log the models of `wanted` (replicates per request) the log lacks."""
        todo = [(r, rep) for r, reps in zip(requests, wanted) for rep in reps
                if self.log.get(r.target, r.test, rep, self.phase) is None]
        if not todo:
            return
        models = [Model(r, self.model_seed(int(r.target), r.test, rep)) for r, rep in todo]
        start = time.perf_counter()
        verdicts = self.runner.verdicts(models)
        seconds = (time.perf_counter() - start) / len(models)
        self.log.extend([self._row(m, rep, ok, margin, seconds)
                         for m, (_, rep), (ok, margin) in zip(models, todo, verdicts)])
        self.trained += len(models)

    def _row(self, model: Model, rep: int, ok: bool, margin: float, seconds: float) -> dict:
        r = model.request
        row: dict[str, object] = {"target": int(r.target), "k": r.test, "rep": int(rep),
                                  "seed": model.seed, "correct": bool(ok), "margin": float(margin),
                                  "seconds": seconds}
        if self.phase != "search":
            row = {"phase": self.phase, **row, "size": int(r.k)}
        return row


def search_target(search: Search, tester: CounterfactualTester, target: int, ranking: np.ndarray,
                  flip_class: int | None) -> SearchResult:
    return search.run(lambda k: tester.accuracy(target, ranking, k, flip_class))


def models_of(tester: CounterfactualTester, target: int, result: SearchResult) -> int:
    """The models a target's search rested on: each of its tests' `used` models."""
    return sum(tester.used[(int(target), int(k))] for k, _ in result.steps)
