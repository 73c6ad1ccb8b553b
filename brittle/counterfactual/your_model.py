"""`find_supports`: brittle's searches for any model, trained by the user's own function.

Given targets (test indices), their rankings (a top-k matrix, or scores to rank), the task and a
function that trains a model on given training indices and labels with a seed and judges one
target (brittle/counterfactual/callables.py: the contract), it runs brittle's search (bisection,
grid, parallel) with the majority stop, lockstep across targets when the function takes a batch
of jobs, the resumable test log in a directory, and the checks (`verify`, `refine_budget`), and
returns the supports with their CDF, AUC and intervals as a run does (docs/your-model.md).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brittle.counterfactual.callables import CallableRunner, TrainFn
from brittle.counterfactual.lockstep import SearchTarget
from brittle.counterfactual.metrics import checks_record, headline, support_cdf
from brittle.counterfactual.rankings import rank_from_scores
from brittle.counterfactual.searches import Bisection, Grid, Parallel, Search
from brittle.counterfactual.supports import Logs, search_supports, support_row
from brittle.counterfactual.tasks import Mislabel, Remove
from brittle.runtime.errors import BrittleError
from brittle.runtime.files import save_json

SEARCHES = {"bisection": Bisection, "grid": Grid, "parallel": Parallel}


@dataclass(frozen=True)
class Supports:
    """What `find_supports` found: `table` (a row per target as support.parquet: target, label,
    support (-1: not found within max_support), n_models[, flip_class][, the checks' columns]),
    the headline (AUC, fraction flipped and their 95% bootstrap intervals over targets, median
    support), the CDF ([k, fraction] points), the checks' record (None without checks), the
    models trained by this call, and the directory holding the logs."""
    table: pd.DataFrame
    headline: dict[str, Any]
    cdf: list[list[float]]
    checks: dict[str, Any] | None
    trained: int
    directory: Path | None


def find_supports(train_fn: TrainFn, targets: Any, train_labels: Any, target_labels: Any, *,
                  rankings: Any = None, scores: Any = None, task: str = "remove",
                  flip_classes: Any = None, search: Search | str = "bisection",
                  directory: str | Path | None = None, seed: int = 0, batched: bool = False,
                  lockstep: bool | None = None, **search_settings: Any) -> Supports:
    """Each target's support under `train_fn` (docs/your-model.md).

    targets int [T] (test indices); train_labels int [N] (the training set's labels);
    target_labels int [T]; rankings int [T, >= K] (most influential first) or scores float
    [T, N] (larger = more support; ranked over every training image); task `remove` or
    `mislabel` (with flip_classes int [T]); search: a Search, or `bisection` | `grid` |
    `parallel` built with `search_settings` (budget, n_test, max_support, verify,
    refine_budget, width, sizes); directory: where the test logs go (a rerun with the same
    inputs resumes them; None: a temporary one); lockstep (default: `batched`): every target's
    next tests go to one call."""
    search_obj = _search(search, search_settings)
    labels = np.asarray(train_labels, dtype=np.int64)
    ids, ranks = _targets_and_rankings(targets, rankings, scores, search_obj, len(labels))
    flips = _flips(task, flip_classes, len(ids))
    items = [SearchTarget(int(t), ranks[i], None if flips is None else int(flips[i]))
             for i, t in enumerate(ids)]
    runner = CallableRunner(train_fn, Mislabel() if flips is not None else Remove(), labels,
                            batched)
    with _log_dir(directory) as where:
        _bind(where, {"targets": ids.tolist(), "task": task, "seed": int(seed),
                      "rankings": hashlib.sha256(ranks.tobytes()).hexdigest(),
                      "flips": None if flips is None else flips.tolist(),
                      "search": {"type": type(search_obj).__name__,
                                 **{k: v for k, v in search_obj.__dict__.items()
                                    if k != "lockstep"}}})
        found = search_supports(search_obj, runner, items, Logs.in_dir(where), int(seed),
                                batched if lockstep is None else bool(lockstep))
    table = pd.DataFrame([support_row(s, int(lab)) for s, lab in
                          zip(found.supports, np.asarray(target_labels, dtype=np.int64))])
    k, s = search_obj.max_support, table["support"].to_numpy()
    return Supports(table, headline(s, k), [[a, b] for a, b in support_cdf(s, k)],
                    checks_record(table, k), found.trained,
                    None if directory is None else Path(directory))


def _search(search: Search | str, settings: dict[str, Any]) -> Search:
    if isinstance(search, Search):
        if settings:
            raise BrittleError(f"find_supports got a Search and settings {sorted(settings)}; "
                               f"give the settings to the Search")
        return search
    if search not in SEARCHES:
        raise BrittleError(f"search={search!r} is not valid; use one of {list(SEARCHES)} or a "
                           f"Search")
    try:
        return SEARCHES[search](**settings)
    except TypeError as err:
        fields = sorted(f.name for f in dataclasses.fields(SEARCHES[search]))  # type: ignore
        raise BrittleError(f"search={search} does not take {err}; its settings: "
                           f"{fields}") from None


def _targets_and_rankings(targets: Any, rankings: Any, scores: Any, search: Search,
                          n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets int64 [T] and rankings int64 [T, K]: given, or ranked from scores."""
    ids = np.asarray(targets, dtype=np.int64).reshape(-1)
    if (rankings is None) == (scores is None):
        raise BrittleError("find_supports needs rankings (int [T, K]) or scores (float [T, N]), "
                           "one of them")
    k = int(search.max_support)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (len(ids), n_train):
            raise BrittleError(f"scores have shape {scores.shape}; give [targets, training "
                               f"images] = [{len(ids)}, {n_train}]")
        rankings = rank_from_scores(scores, k)
    ranks = np.asarray(rankings)
    if ranks.ndim != 2 or len(ranks) != len(ids) or ranks.shape[1] < k:
        raise BrittleError(f"rankings have shape {ranks.shape}; give [targets, >= max_support] "
                           f"= [{len(ids)}, >= {k}]")
    ranks = ranks[:, :k].astype(np.int64)
    if ranks.min() < 0 or ranks.max() >= n_train or any(len(set(r)) < k for r in ranks):
        raise BrittleError(f"rankings must list distinct training indices in 0..{n_train - 1} "
                           f"per target")
    return ids, ranks


def _flips(task: str, flip_classes: Any, n: int) -> np.ndarray | None:
    if task == "remove":
        return None
    if task != "mislabel":
        raise BrittleError(f"task={task!r} is not valid; use 'remove' or 'mislabel'")
    if flip_classes is None or len(np.asarray(flip_classes).reshape(-1)) != n:
        raise BrittleError(f"task='mislabel' needs flip_classes, one class per target ({n})")
    return np.asarray(flip_classes, dtype=np.int64).reshape(-1)


class _log_dir:
    """The directory the logs go to: the given one (made if missing), or a temporary one."""

    def __init__(self, directory: str | Path | None):
        self.given = None if directory is None else Path(directory)
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        if self.given is not None:
            self.given.mkdir(parents=True, exist_ok=True)
            return self.given
        self.tmp = tempfile.TemporaryDirectory(prefix="brittle-supports-")
        return Path(self.tmp.name)

    def __exit__(self, *exc: Any) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


def _bind(directory: Path, spec: dict[str, Any]) -> None:
    """Bind a log directory to its inputs: a rerun with the same resumes, another is refused."""
    record = directory / "supports_spec.json"
    text = json.dumps(spec, sort_keys=True, default=str)
    if record.exists():
        if json.dumps(json.loads(record.read_text()), sort_keys=True) != text:
            raise BrittleError(f"directory {directory} holds the logs of other inputs (targets, "
                               f"rankings, task, search or seed); give another directory or "
                               f"delete it")
        return
    save_json(record, json.loads(text))
