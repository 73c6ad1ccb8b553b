"""Scores computed elsewhere (`scorer=precomputed scorer.path=FILE`): any attribution method's
output, evaluated by brittle's search, statistics and LDS.

The file (brittle/scorers/score_file.py) brings its own targets, which become the run's, so two
methods are compared on the same test images. Its `topk`, when given, is the ranking the search
follows as it is; otherwise its `scores` are ranked within each target's pool (`pool: same_class`,
the paper's, or `all`) exactly as a built-in scorer's. The LDS sums the `scores` as
signed attributions (larger = more support), so `eval=lds` needs them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import Scorer, TargetSet, check_pool
from brittle.scorers.score_file import ScoreFile, read_score_file


class Precomputed(Scorer):
    method = "Precomputed"
    needs_features = False
    signed_by_label = False

    def __init__(self, path: str, pool: str = "same_class", name: str | None = None,
                 lds_sparsity: float = 1.0):
        if not path:
            raise BrittleError("scorer=precomputed needs scorer.path=FILE (an .npz of targets and "
                               "scores/topk, or a brittle run directory)")
        self.pool = check_pool(pool)
        self.path, self.name = Path(path).expanduser(), name
        self.lds_sparsity = float(lds_sparsity)
        self.file: ScoreFile | None = None

    def given_targets(self, n_train: int, n_test_images: int, ordering: str, dataset: str,
                      k: int) -> np.ndarray | None:
        """The file's targets (read and checked now, before any work)."""
        self.file = read_score_file(self.path, n_train, n_test_images, ordering, dataset, k)
        return self.file.targets

    def _loaded(self) -> ScoreFile:
        if self.file is None:
            raise BrittleError("scorer=precomputed runs through the pipeline, which reads "
                               "its file first")
        return self.file

    def scores(self, targets: TargetSet) -> np.ndarray:
        """float64 [T, N]: the file's scores, or for a ranking alone its order as values (W - rank
        on the W listed images, -inf on the rest)."""
        f = self._loaded()
        rows = f.rows(targets.ids)
        if f.topk is None:
            assert f.scores is not None   # a file holds one of the two (score_file.py)
            return np.asarray(f.scores[rows], dtype=np.float64)
        out = np.full((len(rows), len(self.train.labels)), -np.inf)
        width = f.topk.shape[1]
        out[np.arange(len(rows))[:, None], f.topk[rows]] = width - np.arange(width)[None, :]
        return out

    def pool_scores(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """A given ranking is followed as it is; scores are ranked within each target's pool."""
        if self._loaded().topk is not None:
            return scores
        return super().pool_scores(scores, targets)

    def attributions(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        f = self._loaded()
        if f.scores is None:
            raise BrittleError(f"scorer.path={f.source} holds a ranking (topk) but no scores; "
                               "the LDS and score.save_scores need signed scores [T, N_train]: add "
                               "`scores` to the file")
        return np.asarray(f.scores[f.rows(targets.ids)], dtype=np.float64)

    def display_name(self, backbone: str | None) -> str:
        return self.name or f"{self.method} ({self.path.stem or self.path.name})"
