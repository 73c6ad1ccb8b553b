"""Attribution scores from a file (`scorer=precomputed`): reading and checking what a user hands in.

A score file is an `.npz` with
  targets   int [T]           test indices, in the dataset's recorded ordering, each once;
  scores    float [T, N]      larger = more support for the target (signed: LDS sums them), and/or
  topk      int [T, >= K]     a ranking of training indices, most supportive first;
  ordering  str (optional)    the index order the file uses (brittle.data.datasets.ORDERINGS),
or the directory of another brittle run (its `targets.npy`, `topk.npy`, and `scores.npy` when it
saved attributions). Everything is checked before any work: each problem is one error line.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brittle.runtime.errors import BrittleError


@dataclass(frozen=True)
class ScoreFile:
    """targets int64 [T]; scores float [T, N] or None; topk int64 [T, W] or None (one of them
    at least); source: what the user named."""
    targets: np.ndarray
    scores: np.ndarray | None
    topk: np.ndarray | None
    source: str

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each test index in the file (every id is one of its targets)."""
        order = np.argsort(self.targets)
        pos = np.searchsorted(self.targets, np.asarray(ids), sorter=order)
        return order[pos]


def read_score_file(path: Path, n_train: int, n_test_images: int, ordering: str, dataset: str,
                    k: int) -> ScoreFile:
    """The checked contents of `path` for a dataset of n_train training and n_test_images test
    images in `ordering`, searched up to K = k."""
    path = Path(path).expanduser()
    if path.is_dir():
        arrays = _from_run_dir(path, dataset)
    elif path.is_file():
        arrays = _from_npz(path)
    else:
        raise BrittleError(f"scorer.path={path} does not exist; give an .npz of targets and "
                           "scores/topk, or a brittle run directory")
    where = f"scorer.path={path}"
    file_ordering = arrays.pop("ordering", None)
    if file_ordering is not None and str(file_ordering) != ordering:
        raise BrittleError(f"{where}: its indices are in the {file_ordering} order but the "
                           f"dataset was loaded in the {ordering} order; load the dataset in that "
                           "order or convert the indices")
    targets = _targets(arrays.get("targets"), n_test_images, where)
    scores = _scores(arrays.get("scores"), len(targets), n_train, where)
    topk = _topk(arrays.get("topk"), len(targets), n_train, k, where)
    if scores is None and topk is None:
        raise BrittleError(f"{where} holds neither `scores` [T, N_train] nor `topk` [T, >= K]; "
                           "give one of them")
    return ScoreFile(targets, scores, topk, str(path))


def _from_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise BrittleError(f"scorer.path={path} is not a readable .npz archive "
                           f"({type(exc).__name__}); write it with numpy.savez(path, targets=..., "
                           "scores=... or topk=...)") from exc


def _from_run_dir(path: Path, dataset: str) -> dict[str, np.ndarray]:
    """targets, topk and (when saved) scores of another run, whose dataset must be this one."""
    if not (path / "targets.npy").is_file() or not (path / "topk.npy").is_file():
        raise BrittleError(f"scorer.path={path} is a directory without targets.npy and "
                           "topk.npy; give a finished brittle run directory or an .npz")
    spec = path / "run_spec.json"
    if spec.is_file():
        name = json.loads(spec.read_text()).get("dataset", {}).get("name")
        if name is not None and name != dataset:
            raise BrittleError(f"scorer.path={path} is a run on dataset {name}, not {dataset}; "
                               f"use dataset={name} or scores made on {dataset}")
    out = {"targets": np.load(path / "targets.npy"), "topk": np.load(path / "topk.npy")}
    if (path / "scores.npy").is_file():
        out["scores"] = np.load(path / "scores.npy", mmap_mode="r")
    return out


def _targets(value: np.ndarray | None, n_test_images: int, where: str) -> np.ndarray:
    if value is None:
        raise BrittleError(f"{where} has no `targets` (int [T], the test indices its "
                           "rows belong to)")
    ids = np.asarray(value)
    if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise BrittleError(f"{where}: targets must be a non-empty 1-d integer array, got "
                           f"{ids.dtype} {list(ids.shape)}")
    bad = ids[(ids < 0) | (ids >= n_test_images)]
    if len(bad):
        raise BrittleError(f"{where}: target {int(bad[0])} is outside the test set; valid indices "
                           f"are 0..{n_test_images - 1}")
    values, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise BrittleError(f"{where}: target {int(values[counts > 1][0])} appears "
                           f"{int(counts.max())} times; give each test index once")
    return ids.astype(np.int64)


def _scores(value: np.ndarray | None, n_targets: int, n_train: int,
            where: str) -> np.ndarray | None:
    if value is None:
        return None
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.floating):
        raise BrittleError(f"{where}: scores must be a float [T, N_train] array, got {value.dtype} "
                           f"{list(value.shape)}")
    if value.shape != (n_targets, n_train):
        raise BrittleError(f"{where}: scores has shape {list(value.shape)}, expected "
                           f"[{n_targets}, {n_train}] ({n_targets} targets x the dataset's "
                           f"{n_train} training images)")
    bad = int((~np.isfinite(np.asarray(value))).any(axis=1).sum())
    if bad:
        raise BrittleError(f"{where}: scores contain NaN or inf in {bad} rows; every score "
                           "must be finite")
    return value


def _topk(value: np.ndarray | None, n_targets: int, n_train: int, k: int,
          where: str) -> np.ndarray | None:
    if value is None:
        return None
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.integer):
        raise BrittleError(f"{where}: topk must be an integer [T, >= K] array, got {value.dtype} "
                           f"{list(value.shape)}")
    if value.shape[0] != n_targets:
        raise BrittleError(f"{where}: topk has {value.shape[0]} rows for {n_targets} targets")
    if value.shape[1] < k:
        raise BrittleError(f"{where}: topk ranks {value.shape[1]} images per target but "
                           f"search.max_support={k}; use search.max_support <= {value.shape[1]} or "
                           "a longer ranking")
    top = np.asarray(value[:, :k], dtype=np.int64)
    bad = top[(top < 0) | (top >= n_train)]
    if len(bad):
        raise BrittleError(f"{where}: topk holds training index {int(bad[0])}; valid indices are "
                           f"0..{n_train - 1}")
    repeated = [i for i, row in enumerate(top) if len(np.unique(row)) != k]
    if repeated:
        raise BrittleError(f"{where}: topk row {repeated[0]} names a training image twice in "
                           f"its first {k}; a ranking lists each image once")
    return top
