"""Search stage: each target's support, found by the configured search over its ranking with
counterfactual tests, then checked (`search.verify`, `search.refine_budget`) ->
support.parquet, tests.parquet, and with checks checks.parquet and refined.json.

brittle/counterfactual/supports.py does the work with brittle's engine as the runner
(brittle/counterfactual/runners.py). With `search.lockstep=true` every target's search
advances round by round (brittle/counterfactual/lockstep.py): a round collects each search's
next tests and trains all their models together where the trainer can; otherwise target after
target. Seeds are per target, k and replicate, so both orders train the same models. A search
that only reads each test's majority (`Search.majority_only`: every built-in one) stops each
test's training once its majority is settled (brittle/counterfactual/tester.py); `n_models`
counts the models its decisions rest on. Every trained model is logged durably in tests.jsonl
(checks: checks.jsonl) first, so an interrupted search resumes without retraining what it had.
Progress: one line per target with the models trained so far, the elapsed time and an estimate
of the time left.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from brittle.counterfactual.lockstep import SearchTarget
from brittle.counterfactual.runners import EngineRunner
from brittle.counterfactual.searches import Search
from brittle.counterfactual.supports import (
    Checking,
    Logs,
    TargetSupport,
    search_supports,
    support_row,
)
from brittle.counterfactual.tasks import Task
from brittle.retrain.engine import Engine
from brittle.runtime.execution import Execution
from brittle.runtime.files import atomic_path, save_parquet
from brittle.runtime.progress import Progress, clock
from brittle.runtime.stagetimes import timed_stage
from brittle.stages.targets import Targets

log = logging.getLogger(__name__)

DEPENDS_ON = ("seed",)  # handed the task and search the pipeline built


@dataclass(frozen=True)
class Searched:
    """support: one row per target (target, label, support, n_models[, flip_class], with checks
    verified_flip_rate, holds, refined_support, refined_flip_rate, check_models); trained:
    models trained in this process; rounds: sequential search rounds."""
    support: pd.DataFrame
    trained: int
    rounds: int


@timed_stage("search")
def run(cfg: DictConfig, ex: Execution, engine: Engine, task: Task, search: Search,
        targets: Targets, topk: np.ndarray) -> Searched:
    items = [SearchTarget(int(t), topk[i], int(targets.flips[i]) if task.needs_flip_class else None)
             for i, t in enumerate(targets.ids)]
    logs = Logs.in_dir(ex.run_dir)
    start = time.perf_counter()
    with Progress(len(items), "search", ex.progress, unit="target", every=float("inf")) as bar:
        done: set[int] = set()

        def finished(i: int, s: TargetSupport, trained: int) -> None:
            done.add(i)
            bar.update(models=trained)
            # step: the target's row of support.parquet (lockstep finishes them in another order)
            ex.tracker.log({"search/target": s.item.target, "search/support": s.result.support,
                            "search/n_models": s.n_models, "search/models_trained": trained},
                           step=i)
            # the ETA: seconds per model so far times the models the remaining targets will need
            log.info("target %d/%d (test #%d): support %s after %d tests of %d models; %d models "
                     "trained so far, %s elapsed, ~%s left", len(done), len(items), s.item.target,
                     s.result.support, s.result.n_tests, s.n_models, trained,
                     clock(time.perf_counter() - start), clock(bar.eta()))

        found = search_supports(search, EngineRunner(engine, task), items, logs, int(cfg.seed),
                                bool(getattr(search, "lockstep", False)), finished)
    support = pd.DataFrame([support_row(s, int(engine.test_y[s.item.target]))
                            for s in found.supports])
    save_parquet(ex.run_dir / "support.parquet", support)
    save_parquet(ex.run_dir / "tests.parquet", logs.tests.frame())
    if Checking.of(search).verify:
        _log_checks(found.supports)
        save_parquet(ex.run_dir / "checks.parquet",
                     pd.concat([logs.checks.frame(p) for p in ("verify", "refine",
                                                               "refine_verify")]))
        _save_refined(ex, found.supports)
    return Searched(support, found.trained, found.rounds)


def _log_checks(supports: list[TargetSupport]) -> None:
    for s in supports:
        c = s.checked
        if c is None or c.flip_rate is None:
            continue
        refined = (f"; refined to {len(c.refined.indices)} (flip rate {c.refined.flip_rate:.2f}, "
                   f"{c.refined.tests} tests)" if c.refined is not None else "")
        log.info("test #%d: support %d %s on fresh models (flip rate %.2f)%s", s.item.target,
                 s.result.support, "holds" if c.flip_rate > 0.5 else "does not hold",
                 c.flip_rate, refined)


def _save_refined(ex: Execution, supports: list[TargetSupport]) -> None:
    """refined.json: per target (test index) the refined set's training indices, in ranking
    order, its flip rate on fresh models and the candidate tests made."""
    record = {str(s.item.target): {"indices": [int(i) for i in s.checked.refined.indices],
                                   "flip_rate": float(s.checked.refined.flip_rate),
                                   "tests": int(s.checked.refined.tests)}
              for s in supports if s.checked is not None and s.checked.refined is not None}
    with atomic_path(ex.run_dir / "refined.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))
