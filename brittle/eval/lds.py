"""The Linear Datamodeling Score (Ilyas et al.; the paper's Table 1) and its evaluation option.

LDS(z) = Spearman(margins f(z; S_j), sum_{i in S_j} tau_i(z)) over a bank's models j, per target,
where tau are a scorer's signed attributions (brittle/scorers/base.py) sparsified to their top
fraction by magnitude. `sign_alone` is the same score of the sign rule without any method, the
baseline reported beside every LDS (docs/lds.md). `eval=` options build an `Evaluation`:
`LinearDatamodelingScore` or `NoEvaluation`; the pipeline trains the bank they ask for
(brittle/stages/bank.py) and the LDS stage scores it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from brittle.runtime.errors import BrittleError


class Evaluation:
    """An `eval=` option: what a run measures beyond the support search. When it
    `needs_attributions`, the pipeline trains a subset bank of `n_models` models on random
    `alpha`-subsets for it and the LDS stage scores the scorer's attributions on that bank."""

    needs_attributions: ClassVar[bool] = False
    n_models: int = 0
    alpha: float = 0.5

    def fraction(self, default_sparsity: float) -> float:
        """The fraction of |attributions| per target it keeps (the scorer's own by default)."""
        return float(default_sparsity)


class NoEvaluation(Evaluation):
    """`eval=none`: nothing beyond the support search."""


ORDERS = ("independent", "same_order")


@dataclass(frozen=True)
class LinearDatamodelingScore(Evaluation):
    """`eval=lds`: LDS on `n_models` models trained on random `alpha`-subsets (the 'lds' bank),
    with attributions sparsified to `sparsify_top` (null: the scorer's own `lds_sparsity`).
    `order`: each subset model trained as brittle trains it, with its own seed and data order
    (`independent`), or (`same_order`, `eval=lds_same_order`: MAGIC's single-model setting) the
    run's single seeded run on every image with the removed ones weighted 0
    (brittle/retrain/weighted.py; its own bank, 'lds_same_order')."""
    n_models: int = 100
    alpha: float = 0.5
    sparsify_top: float | None = None
    order: str = "independent"

    needs_attributions: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.sparsify_top is not None and not 0 < self.sparsify_top <= 1:
            raise BrittleError(f"eval.sparsify_top={self.sparsify_top} is out of range; use 0 < "
                               f"sparsify_top <= 1, or null for the scorer's own")
        if self.order not in ORDERS:
            raise BrittleError(f"eval.order={self.order} is not valid; use one of {list(ORDERS)}")

    @property
    def purpose(self) -> str:
        """The bank's purpose (its seed stream and cache key): never shared between orders."""
        return "lds" if self.order == "independent" else "lds_same_order"

    def fraction(self, default_sparsity: float) -> float:
        return float(self.sparsify_top if self.sparsify_top is not None else default_sparsity)

    def score(self, masks: np.ndarray, margins: np.ndarray, attributions: np.ndarray,
              default_sparsity: float) -> np.ndarray:
        """LDS per target float [T] from bank masks bool [m, N], the targets' bank margins
        [m, T] and signed attributions [T, N]; a target whose margins are constant scores 0."""
        tau = sparsify_top(np.asarray(attributions, dtype=np.float64),
                           self.fraction(default_sparsity))
        return np.nan_to_num(lds(masks, margins, tau), nan=0.0)


def sign_alone(masks: np.ndarray, margins: np.ndarray, train_labels: np.ndarray,
               target_labels: np.ndarray) -> np.ndarray:
    """LDS per target float [T] of the paper's sign estimation alone: tau = +1 on every training
    image of the target's class, -1 on every other (dense, no magnitude, no method). With masks
    bool [m, N] of subsets of one size this is Spearman(margins, the target's class count in
    each subset) whether other classes count -1 or 0: what a method's magnitudes must beat. A
    target whose margins (or counts) are constant scores 0, as in `score`."""
    same = np.asarray(train_labels)[None, :] == np.asarray(target_labels)[:, None]
    return np.nan_to_num(lds(masks, margins, np.where(same, 1.0, -1.0)), nan=0.0)


def sparsify_top(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the `fraction` largest-magnitude scores of each row of scores [T, N], zero the rest."""
    if fraction >= 1.0:
        return scores
    keep = max(1, int(round(fraction * scores.shape[1])))
    out = np.zeros_like(scores)
    idx = np.argpartition(-np.abs(scores), keep - 1, axis=1)[:, :keep]
    np.put_along_axis(out, idx, np.take_along_axis(scores, idx, axis=1), axis=1)
    return out


def lds(masks: np.ndarray, margins: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Linear Datamodeling Score per target: Spearman(margins[:, t], masks @ scores[t]).

    masks bool [m, N], margins [m, T] (the targets' margins), scores [T, N] -> float [T].
    """
    from scipy.stats import spearmanr

    predicted = masks.astype(np.float64) @ scores.T.astype(np.float64)  # [m, T]
    out = np.empty(scores.shape[0])
    for t in range(scores.shape[0]):
        out[t] = spearmanr(margins[:, t], predicted[:, t]).statistic
    return out
