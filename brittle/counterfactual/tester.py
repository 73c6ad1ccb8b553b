"""Counterfactual tests (retrain N_test models on a modified training set) driven by
the configured search, with every trained model appended durably to the run's test log.

`tests.jsonl` gets one line per trained model, flushed and fsynced before the next model starts;
a rerun reads it back and retrains only models that are not there, so an interrupted search
resumes where it stopped and gives the same table as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brittle.counterfactual.searches import Search, SearchResult
from brittle.counterfactual.tasks import Task
from brittle.retrain.engine import Engine
from brittle.retrain.trainer import Job
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
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows[(row["target"], row["k"], row["rep"])] = row

    def frame(self) -> pd.DataFrame:
        rows = sorted(self.rows.values(), key=lambda r: (r["target"], r["k"], r["rep"]))
        return pd.DataFrame(rows, columns=TEST_COLUMNS)


@dataclass
class CounterfactualTester:
    """The oracle of one target: k -> fraction of n_test models still classifying it correctly."""
    engine: Engine
    task: Task
    log: TestLog
    seed: int
    n_test: int
    trained: int = 0

    def accuracy(self, target: int, ranking: np.ndarray, k: int, flip_class: int | None) -> float:
        return self.accuracies([Request(target, ranking, k, flip_class)])[0]

    def accuracies(self, requests: list[Request]) -> list[float]:
        """Each test's fraction of n_test models still classifying its target correctly. The
        models the log lacks (all of a new test, the rest of a resumed one) are trained together,
        across tests where the trainer can, and logged before they are read."""
        rows = [{rep: self.log.get(r.target, r.k, rep) for rep in range(self.n_test)} for r in requests]
        jobs, owners = [], []
        for r, have in zip(requests, rows):
            missing = [rep for rep, row in have.items() if row is None]
            if missing:
                keep, labels = self.task.apply(self.engine.train_y, r.ranking[:r.k], r.flip_class)
                for rep in missing:
                    jobs.append(Job(keep, labels, model_seed(self.seed, r.target, r.k, rep)))
                    owners.append((r, have, rep))
        if jobs:
            start = time.perf_counter()
            models = self.engine.train_jobs(jobs)
            if self.engine.train_x.is_cuda:  # CUDA runs asynchronously: time the work, not its launch
                torch.cuda.synchronize(self.engine.train_x.device)
            seconds = (time.perf_counter() - start) / len(jobs)
            for job, (r, have, rep), model in zip(jobs, owners, models):
                ok, m = self.engine.evaluate(model, r.target)
                row = {"target": int(r.target), "k": int(r.k), "rep": rep, "seed": job.seed,
                       "correct": ok, "margin": m, "seconds": seconds}
                self.log.append(row)
                have[rep] = row
                self.trained += 1
        return [float(np.mean([bool((have[rep] or {})["correct"]) for rep in range(self.n_test)])) for have in rows]


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
