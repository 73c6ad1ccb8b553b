"""Search stage: each target's support, found by the configured search over its ranking with
counterfactual tests (brittle/counterfactual/tester.py) -> support.parquet and tests.parquet.

With `search.lockstep=true` every target's search advances round by round
(brittle/counterfactual/lockstep.py): a round collects each search's next tests and trains all their
models together where the trainer can; otherwise target after target. Seeds are per target, k
and replicate, so both orders train the same models. A search that only reads each test's
majority (`Search.majority_only`: every built-in one) stops each test's training once its majority
is settled (brittle/counterfactual/tester.py); `n_models` counts the models its decisions rest
on. Every trained model is logged durably in tests.jsonl first, so an interrupted search resumes
without retraining what it had. Progress:
one line per target with the models trained so far, the elapsed time and an estimate of the
time left.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from brittle.counterfactual.lockstep import SearchTarget, search_lockstep
from brittle.counterfactual.searches import Search, SearchResult
from brittle.counterfactual.tasks import Task
from brittle.counterfactual.tester import CounterfactualTester, TestLog, models_of, search_target
from brittle.retrain.engine import Engine
from brittle.runtime.execution import Execution
from brittle.runtime.files import save_parquet
from brittle.runtime.progress import Progress, clock
from brittle.stages.targets import Targets

log = logging.getLogger(__name__)

DEPENDS_ON = ("seed",)  # handed the task and search the pipeline built


@dataclass(frozen=True)
class Searched:
    """support: one row per target (target, label, support, n_models[, flip_class]);
    trained: models trained in this process; rounds: sequential search rounds."""
    support: pd.DataFrame
    trained: int
    rounds: int


def run(cfg: DictConfig, ex: Execution, engine: Engine, task: Task, search: Search,
        targets: Targets, topk: np.ndarray) -> Searched:
    test_log = TestLog(ex.run_dir / "tests.jsonl")
    tester = CounterfactualTester(engine, task, test_log, int(cfg.seed), int(search.n_test),
                                  majority=bool(getattr(search, "majority_only", False)))
    items = [SearchTarget(int(t), topk[i], int(targets.flips[i]) if task.needs_flip_class else None)
              for i, t in enumerate(targets.ids)]
    rows: list[dict | None] = [None] * len(items)
    rounds, start = 0, time.perf_counter()
    with Progress(len(items), "search", ex.progress, unit="target", every=float("inf")) as bar:

        def finished(i: int, result: SearchResult) -> None:
            n_models = models_of(tester, items[i].target, result)
            row = rows[i] = _row(items[i], result, engine, n_models)
            bar.update(models=tester.trained)
            # the ETA: seconds per model so far times the models the remaining targets will need
            log.info("target %d/%d (test #%d): support %s after %d tests of %d models; %d models "
                     "trained, %s elapsed, ~%s left", sum(r is not None for r in rows), len(items),
                     items[i].target, row["support"], result.n_tests, n_models, tester.trained,
                     clock(time.perf_counter() - start), clock(bar.eta()))

        if getattr(search, "lockstep", False):
            rounds = search_lockstep(search, tester, items, finished)
        else:
            for i, q in enumerate(items):
                result = search_target(search, tester, q.target, q.ranking, q.flip_class)
                rounds += result.n_rounds
                finished(i, result)
    support = pd.DataFrame([r for r in rows if r is not None])
    save_parquet(ex.run_dir / "support.parquet", support)
    save_parquet(ex.run_dir / "tests.parquet", test_log.frame())
    return Searched(support, tester.trained, rounds)


def _row(item: SearchTarget, result: SearchResult, engine: Engine, n_models: int) -> dict:
    """One target's support.parquet row; n_models: the models its tests' decisions rest on."""
    row = {"target": item.target, "label": int(engine.test_y[item.target]),
           "support": int(result.support), "n_models": int(n_models)}
    if item.flip_class is not None:
        row["flip_class"] = item.flip_class
    return row
