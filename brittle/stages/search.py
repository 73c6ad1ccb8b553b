"""Search stage: each target's support, found by the configured search over its ranking with
counterfactual tests (brittle/support/counterfactual.py) -> support.parquet and tests.parquet.

Every trained model is logged durably in tests.jsonl first, so an interrupted search resumes
without retraining what it had. Progress: one line per target with the models trained so far,
the elapsed time and an estimate of the time left.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from brittle.retrain.engine import Retrainer
from brittle.runtime.execution import Execution
from brittle.runtime.files import save_parquet
from brittle.runtime.progress import Progress, clock
from brittle.stages.targets import Targets
from brittle.support.counterfactual import CounterfactualTester, TestLog, search_target
from brittle.support.searches import Search
from brittle.support.tasks import Task

log = logging.getLogger(__name__)

DEPENDS_ON = ("seed",)  # handed the task and search the pipeline built


@dataclass(frozen=True)
class Searched:
    """support: one row per target (target, label, support, n_trainings[, flip_class]);
    trained: models trained in this process; rounds: sequential search rounds."""
    support: pd.DataFrame
    trained: int
    rounds: int


def run(spec: DictConfig, ex: Execution, engine: Retrainer, task: Task, search: Search, targets: Targets,
        topk: np.ndarray) -> Searched:
    test_log = TestLog(ex.run_dir / "tests.jsonl")
    tester = CounterfactualTester(engine, task, test_log, int(spec.seed), int(search.n_test))
    rows, rounds, start = [], 0, time.perf_counter()
    with Progress(len(targets.ids), "search", ex.progress, unit="target", every=float("inf")) as bar:
        for i, target in enumerate(targets.ids):
            row, n_rounds = _search_one(tester, task, search, engine, targets, topk, i)
            rows.append(row)
            rounds += n_rounds
            bar.update(models=tester.trained)
            # the ETA: seconds per model so far times the models the remaining targets will need
            log.info("target %d/%d (test #%d): support %s after %d tests; %d models trained, %s elapsed, "
                     "~%s left", i + 1, len(targets.ids), target, row["support"],
                     row["n_trainings"] // int(search.n_test), tester.trained,
                     clock(time.perf_counter() - start), clock(bar.eta()))
    support = pd.DataFrame(rows)
    save_parquet(ex.run_dir / "support.parquet", support)
    save_parquet(ex.run_dir / "tests.parquet", test_log.frame())
    return Searched(support, tester.trained, rounds)


def _search_one(tester: CounterfactualTester, task: Task, search: Search, engine: Retrainer, targets: Targets,
                topk: np.ndarray, i: int) -> tuple[dict, int]:
    """One target's search -> its support.parquet row and the search's sequential rounds."""
    target = int(targets.ids[i])
    flip = int(targets.flips[i]) if task.needs_flip_class else None
    result = search_target(search, tester, target, topk[i], flip)
    row = {"target": target, "label": int(engine.test_y[target]), "support": int(result.support),
           "n_trainings": result.n_tests * int(search.n_test)}
    if flip is not None:
        row["flip_class"] = flip
    return row, result.n_rounds
