"""Counterfactual tests (retrain N_test models on a modified training set) driven by
the configured search, with every trained model appended durably to the run's test log.

A search that only asks whether the majority of a test's models still classify the target
correctly (`Search.majority_only`) gets tests that stop early: the models train in replicate order,
round by round, each round only as many as could still settle the majority (`models_to_decide`),
so a test of 5 models takes 3 when the first 3 agree. The decision is the full test's; the
fraction returned is over the models trained, which is on the same side of 0.5 as the full one.

`tests.jsonl` gets one line per trained model, flushed and fsynced once per round of training
(before the next round starts); a rerun reads it back and retrains only models that are not there,
so an interrupted search resumes where it stopped and gives the same table as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from brittle.counterfactual.searches import Search, SearchResult
from brittle.counterfactual.tasks import Task
from brittle.retrain.engine import Engine
from brittle.retrain.trainer import Job, margin
from brittle.runtime.seeds import model_seed

log = logging.getLogger(__name__)

TEST_COLUMNS = ["target", "k", "rep", "seed", "correct", "margin", "seconds"]


class TestLog:
    """Append-only JSON-lines log of trained models, keyed by (target, k, rep)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[tuple[int, int, int], dict] = {}
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
            self.rows[(row["target"], row["k"], row["rep"])] = row
            good += len(line) + 1
        if good < len(data):  # drop the torn tail so later appends start on a clean line
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def get(self, target: int, k: int, rep: int) -> dict | None:
        return self.rows.get((target, k, rep))

    def append(self, row: dict) -> None:
        self.extend([row])

    def extend(self, rows: Sequence[dict]) -> None:
        """Append rows in one write and one fsync (a round's models are all trained by then)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(row) + "\n" for row in rows))
            f.flush()
            os.fsync(f.fileno())
        for row in rows:
            self.rows[(row["target"], row["k"], row["rep"])] = row

    def frame(self) -> pd.DataFrame:
        rows = sorted(self.rows.values(), key=lambda r: (r["target"], r["k"], r["rep"]))
        return pd.DataFrame(rows, columns=TEST_COLUMNS)


def models_to_decide(n_test: int, outcomes: Sequence[bool]) -> int:
    """How many more models a test of `n_test` trains before its majority is settled, given the
    outcomes (classified correctly or not) of its first models: 0 once more than half are correct
    (accuracy > 0.5: held) or at least half are wrong (accuracy <= 0.5: flipped), else the fewest
    more that could settle it, so no round trains a model the test in order would not."""
    correct = sum(bool(o) for o in outcomes)
    wrong = len(outcomes) - correct
    return max(0, min(n_test // 2 + 1 - correct, (n_test + 1) // 2 - wrong))


@dataclass
class CounterfactualTester:
    """The oracle of one target: k -> fraction of n_test models still classifying it correctly;
    with `majority`, of the models trained until the majority was settled. `used[(target, k)]`:
    the models each test's answer rests on; `trained`: models trained in this process."""
    engine: Engine
    task: Task
    log: TestLog
    seed: int
    n_test: int
    majority: bool = False
    trained: int = 0
    used: dict[tuple[int, int], int] = field(default_factory=dict)

    def accuracy(self, target: int, ranking: np.ndarray, k: int, flip_class: int | None) -> float:
        return self.accuracies([Request(target, ranking, k, flip_class)])[0]

    def accuracies(self, requests: list[Request]) -> list[float]:
        """Each test's fraction of models still classifying its target correctly. Round by round,
        every unsettled test's next models (in replicate order) that the log lacks are trained
        together, across tests where the trainer can, and logged before they are read."""
        outcomes: list[list[bool]] = [[] for _ in requests]
        modified: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        while True:
            wanted = [range(len(o), len(o) + self._still_needed(o)) for o in outcomes]
            if not any(wanted):
                break
            self._train_missing(requests, wanted, modified)
            for r, reps, got in zip(requests, wanted, outcomes):
                rows = [self.log.rows[(int(r.target), int(r.k), rep)] for rep in reps]
                got += [bool(row["correct"]) for row in rows]
        for r, got in zip(requests, outcomes):
            self.used[(int(r.target), int(r.k))] = len(got)
        return [float(np.mean(got)) for got in outcomes]

    def _still_needed(self, outcomes: list[bool]) -> int:
        if self.majority:
            return models_to_decide(self.n_test, outcomes)
        return self.n_test - len(outcomes)

    def _train_missing(self, requests: list[Request], wanted: list[range],
                       modified: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Train, evaluate and log the models of `wanted` (replicates per request) the log lacks;
        each test's modified training set is built once, however many rounds it takes."""
        jobs, owners = [], []
        for i, (r, reps) in enumerate(zip(requests, wanted)):
            for rep in reps:
                if self.log.get(int(r.target), int(r.k), rep) is not None:
                    continue
                if i not in modified:
                    modified[i] = self.task.apply(self.engine.train_y, r.ranking[:r.k],
                                                  r.flip_class)
                keep, labels = modified[i]
                jobs.append(Job(keep, labels, model_seed(self.seed, r.target, r.k, rep)))
                owners.append((r, rep))
        if not jobs:
            return
        start = time.perf_counter()
        models = self.engine.train_jobs(jobs)
        # the verdicts' one transfer to the host waits for the device: the time is the work's
        verdicts = verdicts_of(self.engine, models, [int(r.target) for r, _ in owners])
        seconds = (time.perf_counter() - start) / len(jobs)
        self.log.extend([{"target": int(r.target), "k": int(r.k), "rep": rep, "seed": job.seed,
                          "correct": ok, "margin": m, "seconds": seconds}
                         for job, (r, rep), (ok, m) in zip(jobs, owners, verdicts)])
        self.trained += len(jobs)


def verdicts_of(engine: Engine, models: Sequence[nn.Module], targets: Sequence[int]
                ) -> list[tuple[bool, float]]:
    """(classified correctly, margin) of each model on its test image `targets[i]`: the logits
    of all of them [len(models), C] go to the host in one transfer (`Engine.evaluate`'s numbers)."""
    with torch.no_grad():
        out = torch.stack([engine.logits(m, engine.test_x[t:t + 1])[0]
                           for m, t in zip(models, targets)]).cpu()
    labels = [int(engine.test_y[t]) for t in targets]
    return [(bool(int(o.argmax()) == y), margin(o, y)) for o, y in zip(out, labels)]


@dataclass(frozen=True)
class Request:
    """One counterfactual test: `target`'s ranking (int [K]) modified up to prefix `k`."""
    target: int
    ranking: np.ndarray
    k: int
    flip_class: int | None


def search_target(search: Search, tester: CounterfactualTester, target: int, ranking: np.ndarray,
                  flip_class: int | None) -> SearchResult:
    return search.run(lambda k: tester.accuracy(target, ranking, k, flip_class))


def models_of(tester: CounterfactualTester, target: int, result: SearchResult) -> int:
    """The models a target's search rested on: each of its tests' `used` models."""
    return sum(tester.used[(int(target), int(k))] for k, _ in result.steps)
