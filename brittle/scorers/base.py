"""The scorer interface: everything the pipeline asks of an attribution method.

A scorer is prepared once per run with the training set (labels, and backbone features when it
`needs_features`) and, when it needs none, `ScorerModels`: the retraining engine and the models
it asked for with `models_needed` (trained and cached by the pipeline's models or bank stage).

Vocabulary (the same in code, config and docs):
- **scores** float [T, N]: what a scorer returns for a chunk of targets (`TargetSet`: test
  images), over every training image; larger = more support for the target.
- **ranking** and the **top-k** matrix derive from the scores: `pool_scores(scores, targets)` keeps
  each target's **pool** (`pool: same_class`, the paper's appendix A.4: the target's class; `all`:
  every training image; -inf elsewhere) and the top-k matrix is its k best indices, the order the
  search removes or relabels.
- **attributions** float [T, N]: the one other term, the signed scores tau that the Linear
  Datamodeling Score sums (larger = more support for the target's true-class margin). Similarity
  scorers (`signed_by_label`) follow the paper's sign estimation: magnitude from
  `attribution_magnitude(scores)` (the inverse distance, read as `magnitude` says:
  brittle/scorers/magnitude.py), positive for the target's class,
  negative for every other class (`other_classes="negative"`; `"zero"` is the named alternative
  that leaves other classes out). Influence estimators (TRAK, Datamodels, Grad-Cos) are already
  signed: their scores are their attributions.

`lds_sparsity` is the fraction of |tau| per target that LDS keeps (paper: top 5% for its ESVM,
the adaptation of its own method; dense for TRAK and Datamodels, as their papers evaluate them).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from brittle.runtime.errors import BrittleError
from brittle.scorers.magnitude import PAPER, magnitude


@dataclass(frozen=True)
class TrainSet:
    """labels int64 [N]; features float32 [N, D] (None for scorers without features);
    ordering: the dataset's index order (brittle.data.datasets.ORDERINGS)."""
    labels: np.ndarray
    features: np.ndarray | None = None
    ordering: str = "official"


@dataclass(frozen=True)
class TargetSet:
    """ids: test indices int64 [T]; labels int64 [T]; features float32 [T, D] or None."""
    ids: np.ndarray
    labels: np.ndarray
    features: np.ndarray | None = None


@dataclass(frozen=True)
class Cost:
    """What a method needs beyond the ranking: models trained, their training time, and the bytes
    a user keeps to score new targets (features, checkpoints, banks)."""
    n_models: int = 0
    models_seconds: float = 0.0
    bytes_stored: int = 0


@dataclass(frozen=True)
class ModelRequest:
    """The models a model-based scorer asks the pipeline for, before it is prepared: `n_models`
    checkpoints, each trained on a seeded random `fraction` of the training set, or with `bank`
    a subset bank (masks and test margins) of `n_models` models on `fraction`-subsets. `purpose`
    names the seed stream (brittle/runtime/seeds.py) and is part of the cache key."""
    purpose: str
    n_models: int
    fraction: float = 1.0
    bank: bool = False


@dataclass(frozen=True)
class ScorerModels:
    """What the pipeline hands a scorer that needs no features (brittle/stages/models.py): the
    retraining engine (data on the device, arch, trainer), a scratch directory in the run
    directory, and the models it requested: `states` (checkpoints) or `bank`, and the seconds
    their training took when they were built (cached stages count once)."""
    engine: Any          # brittle.retrain.engine.Engine
    work_dir: Path
    states: list[dict] = field(default_factory=list)
    bank: Any = None     # brittle.stages.bank.Bank
    seconds: float = 0.0

    def model(self, state: dict) -> torch.nn.Module:
        """A model of the engine's arch on its device, holding `state`, in eval mode."""
        net = self.engine.build().to(self.engine.train_x.device)
        net.load_state_dict(state)
        return net.eval()


class Scorer(ABC):
    """Base of every scorer; a subclass implements `scores` and sets the class attributes."""

    method: ClassVar[str] = "?"           # display name, e.g. "ESVM" (the backbone is appended)
    needs_features: ClassVar[bool] = True
    signed_by_label: ClassVar[bool] = True
    paper_pool: ClassVar[str] = "same_class"  # the pool the paper ranks for this method
    pool: str = "same_class"   # the pool this run ranks: same_class | all (POOLS)
    other_classes: str = "negative"  # the sign rule's other classes: negative (paper) | zero
    magnitude: str = PAPER   # the reading of "inverse distance" (brittle/scorers/magnitude.py)
    default_magnitude: ClassVar[str] = PAPER   # the scorer's default reading (unnamed in labels)
    lds_sparsity: float = 1.0
    not_converged: int = 0   # solves that missed their tolerance (solver-based scorers)
    fallbacks: int = 0       # solves redone by a slower exact solver

    def models_needed(self) -> ModelRequest | None:
        """The models this scorer trains for itself (the pipeline trains and caches them)."""
        return None

    def given_targets(self, n_train: int, n_test_images: int, ordering: str, dataset: str,
                      k: int) -> np.ndarray | None:
        """Test indices int64 [T] the scorer brings scores for (scores from a file): they become
        the run's targets. None (every computed scorer): the run chooses its targets."""
        return None

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        """Called once per run before any `scores`; keeps what scoring needs. `models` is
        given to scorers that need no features (with what `models_needed` asked for)."""
        self.train = train
        self.device = device

    @abstractmethod
    def scores(self, targets: TargetSet) -> np.ndarray:
        """float64 [T, N] over every training image: higher = matters more for the target."""

    def pool_scores(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """scores restricted to each target's pool (-inf elsewhere): what the search ranks."""
        return restrict_to_pools(scores.copy(), self.train.labels, targets.labels, self.pool)

    def attribution_distance(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """The distance float [T, N] a similarity's scores [T, N] measure: minus the scores
        (+inf where the scores are -inf); negative beyond an ESVM's boundary."""
        return -np.asarray(scores, dtype=np.float64)

    def attribution_magnitude(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """Influence magnitude float [T, N] of a similarity: the inverse distance under the
        scorer's `magnitude` reading, the nearest the largest; 0 where no distance is known."""
        return magnitude(self.attribution_distance(scores, targets), self.magnitude)

    def attributions(self, scores: np.ndarray, targets: TargetSet) -> np.ndarray:
        """Signed LDS scores tau float64 [T, N]."""
        if not self.signed_by_label:
            return np.asarray(scores, dtype=np.float64)
        same = self.train.labels[None, :] == np.asarray(targets.labels)[:, None]
        other = -1.0 if self.other_classes == "negative" else 0.0
        return (np.where(same, 1.0, other)
                * self.attribution_magnitude(np.asarray(scores, dtype=np.float64), targets))

    def cost(self) -> Cost:
        """Models trained and bytes kept beyond the features (which the pipeline counts)."""
        return Cost(n_models=1 if self.needs_features else 0)

    def display_name(self, backbone: str | None) -> str:
        """e.g. 'ESVM MoCo', 'TRAK', 'TRAK (pool same_class)': the method as tables name it."""
        name = f"{self.method} {backbone}" if self.needs_features and backbone else self.method
        zero = " (other classes 0)" if self.other_classes == "zero" else ""
        return name + self._protocol_suffix() + zero + self._reading_suffix()

    def _reading_suffix(self) -> str:
        """Marks an LDS reading of "inverse distance" other than the scorer's default."""
        return (f" (magnitude {self.magnitude})" if self.magnitude != self.default_magnitude
                else "")

    def _protocol_suffix(self) -> str:
        """Marks a run whose pool departs from the one the paper ranks for this method."""
        return "" if self.pool == self.paper_pool else f" (pool {self.pool})"


OTHER_CLASSES = ("negative", "zero")
POOLS = ("same_class", "all")


def check_pool(pool: str) -> str:
    """`scorer.pool`, checked: the training images a target's ranking is drawn from."""
    if pool not in POOLS:
        raise BrittleError(f"scorer.pool={pool} is not valid; use one of {list(POOLS)}")
    return pool


def sign_rule(other_classes: str) -> str:
    """`scorer.other_classes`, checked: how a similarity scorer signs images outside the target's
    class in its attributions (negative: the paper's sign estimation; zero: left out)."""
    if other_classes not in OTHER_CLASSES:
        raise BrittleError(f"scorer.other_classes={other_classes} is not valid; use one of "
                           f"{list(OTHER_CLASSES)}")
    return other_classes


def restrict_to_pools(scores: np.ndarray, train_labels: np.ndarray, target_labels: np.ndarray,
                      pool: str) -> np.ndarray:
    """scores [T, N] with -inf outside each target's pool (in place, also returned)."""
    scores = np.asarray(scores, dtype=np.float64)
    if pool == "same_class":
        scores[train_labels[None, :] != np.asarray(target_labels)[:, None]] = -np.inf
    return scores


def candidate_pool(train_labels: np.ndarray, label: int, pool: str) -> np.ndarray:
    """Training indices int64 [P] a target of class `label` may be attributed to: its class only
    (`same_class`, the paper's appendix A.4) or every image (`all`)."""
    if pool == "same_class":
        return np.flatnonzero(train_labels == label)
    return np.arange(len(train_labels))


def check_pool_sizes(train_labels: np.ndarray, target_labels: np.ndarray, k: int,
                     pool: str) -> None:
    """max_support must fit in every target's pool, else the ranking cannot be that long."""
    for label in np.unique(target_labels):
        size = len(candidate_pool(train_labels, int(label), pool))
        if k > size:
            raise BrittleError(
                f"search.max_support={k} is larger than class {int(label)}'s {size} training "
                f"images; use search.max_support <= {size}")


def validate_features(name: str, feats: np.ndarray, chunk: int = 8192) -> None:
    """Refuse NaN/inf features; reads in chunks so memory-mapped embeddings stay on disk."""
    bad = sum(int((~np.isfinite(np.asarray(feats[i:i + chunk]))).any(axis=1).sum())
              for i in range(0, len(feats), chunk))
    if bad:
        raise BrittleError(f"{name} features contain NaN or inf in {bad} rows; re-embed or "
                           f"retrain the backbone (its pretraining may have diverged)")
