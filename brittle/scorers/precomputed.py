"""Scores computed elsewhere (`scorer=precomputed scorer.path=FILE`): any attribution method's
output, evaluated by brittle's search, statistics and LDS.

The file (brittle/scorers/score_file.py) brings its own targets, which become the run's, so two
methods are compared on the same test images. Its `topk`, when given, is the ranking the search
follows as it is; otherwise its `scores` are ranked within each target's pool (`pool: class`, the
paper's sign estimation, or `all`) exactly as a built-in scorer's. The LDS sums the `scores` as
signed attributions (larger = more support), so `eval=lds` needs them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import Queries, Scorer
from brittle.scorers.score_file import ScoreFile, read_score_file

POOLS = ("class", "all")


class Precomputed(Scorer):
    method = "Precomputed"
    needs_features = False
    signed_by_label = False

    def __init__(self, path: str, pool: str = "class", label: str | None = None,
                 lds_sparsity: float = 1.0):
        if pool not in POOLS:
            raise BrittleError(f"scorer.pool={pool} is not valid; use one of {list(POOLS)}")
        if not path:
            raise BrittleError("scorer=precomputed needs scorer.path=FILE (an .npz of targets and "
                               "scores/topk, or a brittle run directory)")
        self.path, self.pool, self.label = Path(path).expanduser(), pool, label
        self.label_conditioning = pool == "class"
        self.lds_sparsity = float(lds_sparsity)
        self.file: ScoreFile | None = None

    def given_targets(self, n_train: int, n_test: int, ordering: str, dataset: str,
                      k: int) -> np.ndarray | None:
        """The file's targets (read and checked now, before any work)."""
        self.file = read_score_file(self.path, n_train, n_test, ordering, dataset, k)
        return self.file.targets

    def _loaded(self) -> ScoreFile:
        if self.file is None:
            raise BrittleError("scorer=precomputed runs through the pipeline, which reads "
                               "its file first")
        return self.file

    def scores(self, queries: Queries) -> np.ndarray:
        """float64 [T, N]: the file's scores, or for a ranking alone its order as values (W - rank
        on the W listed images, -inf on the rest)."""
        f = self._loaded()
        rows = f.rows(queries.ids)
        if f.topk is None:
            assert f.scores is not None   # a file holds one of the two (score_file.py)
            return np.asarray(f.scores[rows], dtype=np.float64)
        out = np.full((len(rows), len(self.train.labels)), -np.inf)
        width = f.topk.shape[1]
        out[np.arange(len(rows))[:, None], f.topk[rows]] = width - np.arange(width)[None, :]
        return out

    def pool_scores(self, scores: np.ndarray, queries: Queries) -> np.ndarray:
        """A given ranking is followed as it is; scores are ranked within each target's pool."""
        if self._loaded().topk is not None:
            return scores
        return super().pool_scores(scores, queries)

    def attributions(self, scores: np.ndarray, queries: Queries) -> np.ndarray:
        f = self._loaded()
        if f.scores is None:
            raise BrittleError(f"scorer.path={f.source} holds a ranking (topk) but no scores; "
                               "the LDS and score.save_scores need signed scores [T, N_train]: add "
                               "`scores` to the file")
        return np.asarray(f.scores[f.rows(queries.ids)], dtype=np.float64)

    def display_label(self, backbone: str | None) -> str:
        return self.label or f"{self.method} ({self.path.stem or self.path.name})"
