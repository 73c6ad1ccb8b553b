"""The supported Python API: brittle's stages and scorers without the command line, and its
searches for a model trained by your own code.

    from brittle.api import rank, find_supports
    from brittle.scorers.esvm.scorer import ExemplarSVM
    topk = rank(ExemplarSVM(), train_feats, train_labels, target_feats, target_labels, k=100)
    found = find_supports(my_train_and_judge, targets, train_labels, target_labels, rankings=topk)

The stage helpers take a composed config (Hydra's `compose`, see tests/helpers.py) and run one
stage with that config's slice and execution settings, exactly as `python run.py` does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brittle.counterfactual.callables import TrainingJob
from brittle.counterfactual.rankings import rank_from_scores
from brittle.counterfactual.your_model import Supports, find_supports
from brittle.data.datasets import Dataset
from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON
from brittle.retrain.engine import Engine
from brittle.runtime.execution import execution_of, resolve_device
from brittle.scorers.base import (
    Scorer,
    ScorerModels,
    TargetSet,
    TrainSet,
    validate_features,
)
from brittle.stages import bank as bank_stage
from brittle.stages import data as data_stage
from brittle.stages import embed as embed_stage
from brittle.stages import pretrain as pretrain_stage
from brittle.stages.embed import Embeddings
from brittle.stages.keys import select

__all__ = ["rank", "find_supports", "Supports", "TrainingJob", "load_data", "build_engine",
           "pretrain", "embed", "scorer_models", "bank"]


def rank(scorer: Scorer, train: np.ndarray | None, train_labels: np.ndarray,
         targets: np.ndarray | None, target_labels: np.ndarray,
         target_ids: np.ndarray | None = None,
         k: int = 100, models: ScorerModels | None = None,
         device: torch.device | str | None = None) -> np.ndarray:
    """Top-k matrix int64 [T, k] of training indices per target, most influential first.

    train float [N, D] and targets float [T, D] are features (ignored by scorers that need
    none); labels are int [N] and [T]; target_ids (test indices, default 0..T-1) seed the random
    scorer and select test images for model-based scorers, which also need `models`. The scorer
    runs on `device` (default: the models' device, else the CPU; `auto`, `cpu`, `cuda`, `cuda:N`
    as the `device` setting): `device="cuda"` scores ESVM on the current GPU."""
    labels = np.asarray(target_labels)
    ids = np.arange(len(labels)) if target_ids is None else np.asarray(target_ids)
    feats = scorer.needs_features
    if feats:
        validate_features("train", np.asarray(train))
        validate_features("target", np.asarray(targets))
    if device is None:
        device = models.engine.train_x.device if models is not None else torch.device("cpu")
    scorer.prepare(TrainSet(np.asarray(train_labels), np.asarray(train) if feats else None), models,
                   resolve_device(str(device)))
    q = TargetSet(ids, labels, np.asarray(targets) if feats else None)
    return rank_from_scores(scorer.pool_scores(scorer.scores(q), q), k)


def load_data(cfg: DictConfig, run_dir: Path | str = ".") -> Dataset:
    """The dataset of `cfg.dataset` (decoded into the cache once, for CIFAR-10)."""
    return data_stage.run(select(cfg, data_stage.DEPENDS_ON), execution_of(cfg, Path(run_dir)))


def build_engine(cfg: DictConfig, data: Dataset) -> Engine:
    """The retraining engine of `cfg.arch` and `cfg.trainer` on `data`, on `cfg.device`."""
    return Engine.from_slice(select(cfg, ENGINE_DEPENDS_ON), data,
                              execution_of(cfg, Path(".")).device)


def pretrain(cfg: DictConfig, data: Dataset) -> Path:
    """The cache directory of the pretrained backbone of `cfg.backbone` (trained if missing)."""
    part = select(cfg, pretrain_stage.DEPENDS_ON, pretrain_stage.EXCLUDES)
    return pretrain_stage.run(part, execution_of(cfg, Path(".")), data)


def embed(cfg: DictConfig, data: Dataset, backbone_dir: Path) -> Embeddings:
    """Train and test features of the backbone in `backbone_dir` (cached)."""
    return embed_stage.run(select(cfg, embed_stage.DEPENDS_ON), execution_of(cfg, Path(".")), data,
                           backbone_dir)


def scorer_models(cfg: DictConfig, engine: Engine, scorer: Scorer, work_dir: Path | str = "."
                  ) -> ScorerModels:
    """What the pipeline hands a model-based scorer (TRAK, Datamodels, Grad-Cos): the engine and
    the models its `models_needed` asks for, trained once into `cfg.cache_dir`."""
    from brittle import pipeline
    return pipeline.scorer_models(cfg, execution_of(cfg, Path(work_dir)), engine, scorer)


def bank(cfg: DictConfig, engine: Engine, n_models: int, alpha: float, purpose: str = "datamodels"
         ) -> bank_stage.Bank:
    """A subset bank of `n_models` models on random `alpha`-subsets (cached; `purpose` 'datamodels'
    or 'lds' picks its seed stream)."""
    return bank_stage.run(select(cfg, bank_stage.DEPENDS_ON), execution_of(cfg, Path(".")), engine,
                          n_models, alpha, purpose)
