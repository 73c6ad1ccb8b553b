"""Targets stage: class-balanced, seeded test samples (optionally only correctly classified), and
each one's mislabel flip class (second by average rank over the reference models) -> targets.npy
int64 [T], flips.npy int64 [T] in the run directory.

A target the models already misclassify is, as a rule, misclassified at every tested size, so
the search records its smallest size (bisection: K / 2^budget, 10 for K = 1280 and budget 7),
whatever the attribution method: it says nothing about the method, so by default
(`targets.only_correct`) only samples the reference models classify correctly are eligible (the
mean reference softmax puts its maximum on the true label). The recorded files are the run's
truth: a resumed run (or one whose reference models were rebuilt) reads them back and refuses to
continue when recomputation disagrees, since its ranking and logged tests belong to them.

`targets.indices` names the targets instead: a list, or a .npy/.txt/.csv file of test indices
(brittle/data/indices.py), e.g. the reference code's `test_100.npy`. The pipeline reads a file
into the composed config before the run directory is bound (`with_indices_read`), so the run's
identity (run_spec.json) holds the indices themselves: a file whose content changed is another
run, and the same indices as a list or from any file are the same run. It checks them against
the test set as soon as the dataset is loaded (`explicit_indices`), before any model trains.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from brittle.counterfactual.tasks import flip_classes
from brittle.data.datasets import Dataset
from brittle.data.indices import read_indices, shown, source_of
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import Execution
from brittle.runtime.files import load_npy, save_npy
from brittle.runtime.seeds import Stream
from brittle.runtime.stagetimes import timed_stage

DEPENDS_ON = ("targets",)


@dataclass(frozen=True)
class Targets:
    """ids: sorted test indices int64 [T] of this shard; flips: each one's flip class int64 [T]."""
    ids: np.ndarray
    flips: np.ndarray


@timed_stage("targets")
def run(cfg: DictConfig, ex: Execution, data: Dataset, probs: np.ndarray,
        given: np.ndarray | None = None) -> Targets:
    """Select (or read back) this run's targets from the reference models' test softmax
    [R, M, C] (eligibility by their mean, flips by their average rank), or take those of a
    score file (`given`, test indices [T])."""
    ids = select_targets(cfg.targets, data, probs.mean(0), given)
    flips = flip_classes(probs[:, ids], data.test.labels[ids])
    id_path, flip_path = ex.run_dir / "targets.npy", ex.run_dir / "flips.npy"
    recorded_ids, recorded_flips = load_npy(id_path), load_npy(flip_path)
    if recorded_ids is not None and recorded_flips is not None:
        recorded = Targets(recorded_ids, recorded_flips)
        if not (np.array_equal(recorded.ids, ids) and np.array_equal(recorded.flips, flips)):
            changed = int(len(recorded.ids) != len(ids) or (recorded.ids != ids).sum()
                          + (recorded.flips != flips).sum())
            raise BrittleError(
                f"run directory {ex.run_dir} was made with other targets or flip classes than the "
                f"reference models give now ({changed} differ; the reference cache was rebuilt?); "
                f"restore that cache entry, or delete the run directory to start over")
        return recorded
    save_npy(flip_path, flips)
    save_npy(id_path, ids)
    return Targets(ids, flips)


def select_targets(tcfg: DictConfig, data: Dataset, mean_probs: np.ndarray,
                   given: np.ndarray | None = None) -> np.ndarray:
    """Sorted test indices int64 [T] of this shard (`shard` of `num_shards`)."""
    chosen = _all_targets(tcfg, data, mean_probs) if given is None else _of_file(tcfg, data, given)
    shard, num = int(tcfg.shard), int(tcfg.num_shards)
    if num < 1 or not 0 <= shard < num:
        raise BrittleError(f"targets.shard={shard} with targets.num_shards={num} is out of range; "
                           f"use num_shards >= 1 and 0 <= shard < num_shards")
    return chosen[shard::num]


def with_indices_read(cfg: DictConfig) -> tuple[DictConfig, str]:
    """(cfg with a file of `targets.indices` replaced by its indices, checked as
    brittle/data/indices.py says; how error lines name them: the setting, and the file)."""
    value = cfg.targets.indices
    if not isinstance(value, str):
        return cfg, source_of(value)
    ids = read_indices(value)
    out = copy.deepcopy(cfg)
    out.targets.indices = ids.tolist()
    return out, source_of(value)


def check_indices(tcfg: DictConfig, data: Dataset, where: str | None = None) -> None:
    """Explicit `targets.indices`, if any, against the test set: the pipeline's early check."""
    if tcfg.indices is not None:
        explicit_indices(tcfg, data, where)


def explicit_indices(tcfg: DictConfig, data: Dataset, where: str | None = None) -> np.ndarray:
    """`targets.indices` int64 [T] in their given order, checked against the test set and the
    dataset's ordering; `where` names them in an error line (default: the setting, and the file
    when `indices` is one)."""
    where = where or source_of(tcfg.indices)
    n_test = len(data.test)
    if tcfg.indices_ordering != data.ordering:
        raise BrittleError(
            f"{where} are in the {tcfg.indices_ordering} order, but dataset {data.name} "
            f"was loaded in the {data.ordering} order; load the dataset in that order (CIFAR-10: "
            f"the python batches as dataset.root) or set targets.indices_ordering={data.ordering} "
            f"if the indices refer to this order")
    idx = read_indices(tcfg.indices)
    bad = idx[(idx < 0) | (idx >= n_test)]
    if len(bad):
        raise BrittleError(f"{where} contains {shown(bad)}, outside the test set; "
                           f"valid indices are 0..{n_test - 1}")
    return idx


def _of_file(tcfg: DictConfig, data: Dataset, given: np.ndarray) -> np.ndarray:
    """A score file's targets (sorted): all of them, or the `targets.indices` among them. Neither
    `targets.n` nor `only_correct` applies: the file decides which test images are compared."""
    ids = np.sort(np.asarray(given, dtype=np.int64))
    if tcfg.indices is None:
        return ids
    wanted = explicit_indices(tcfg, data)
    missing = np.setdiff1d(wanted, ids)
    if len(missing):
        raise BrittleError(f"targets.indices names test index {int(missing[0])}, which the score "
                           f"file has no scores for; use indices among its {len(ids)} targets or "
                           "drop targets.indices")
    return np.sort(wanted)


def _all_targets(tcfg: DictConfig, data: Dataset, mean_probs: np.ndarray) -> np.ndarray:
    """Sorted test indices int64 [T]: `targets.indices` if given, else `targets.n` balanced
    picks."""
    if tcfg.indices is not None:
        return explicit_indices(tcfg, data)
    test_labels = data.test.labels
    eligible = np.ones(len(test_labels), dtype=bool)
    if tcfg.only_correct:
        eligible = mean_probs.argmax(1) == test_labels
    n = int(tcfg.n)
    classes = np.unique(test_labels)
    if n < 1 or n > int(eligible.sum()):
        raise BrittleError(f"targets.n={n} is out of range; use 1..{int(eligible.sum())} "
                           "(eligible test samples"
                           f"{' classified correctly' if tcfg.only_correct else ''})")
    rng = np.random.default_rng([int(tcfg.seed), int(Stream.TARGETS)])
    per_class = [rng.permutation(np.flatnonzero(eligible & (test_labels == c))) for c in classes]
    chosen: list[int] = []
    # round-robin over classes (in a seeded class order) keeps the selection balanced
    depth = 0
    class_order = rng.permutation(len(classes))
    while len(chosen) < n:
        for c in class_order:
            if depth < len(per_class[c]) and len(chosen) < n:
                chosen.append(int(per_class[c][depth]))
        depth += 1
    return np.sort(np.asarray(chosen, dtype=np.int64))
