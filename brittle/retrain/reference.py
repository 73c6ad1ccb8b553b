"""Reference stage: models trained on the full data, whose test softmax decides targets and flips.

Writes `probs.npy` float32 [n_models, N_test, C] into the stage cache, keyed by dataset, arch and
seed: a sweep over scorers, tasks or searches trains the reference models once.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from brittle.artifacts import StageCache
from brittle.config import dataset_spec
from brittle.retrain.engine import Retrainer, model_seed

log = logging.getLogger(__name__)

_REFERENCE_STREAM = 7_000_001  # keeps reference seeds apart from counterfactual-test seeds


def reference_spec(cfg: DictConfig) -> dict:
    return {"dataset": dataset_spec(cfg), "arch": OmegaConf.to_container(cfg.arch, resolve=True),
            "trainer": OmegaConf.to_container(cfg.trainer, resolve=True),
            "normalize": OmegaConf.to_container(cfg.dataset.normalize, resolve=True),
            "n_models": int(cfg.reference.n_models), "seed": int(cfg.seed)}


def reference(cfg: DictConfig, engine: Retrainer, cache: StageCache) -> np.ndarray:
    """Stage: test-set softmax of `reference.n_models` full-data models, float32 [R, M, C]."""
    n_models = int(cfg.reference.n_models)

    def compute(tmp: Path) -> dict:
        start = time.perf_counter()
        probs = np.stack([engine.test_probs(model_seed(cfg.seed, _REFERENCE_STREAM, r))
                          for r in range(n_models)]).astype(np.float32)
        np.save(tmp / "probs.npy", probs)
        acc = [float((p.argmax(1) == engine.test_y).mean()) for p in probs]
        seconds = time.perf_counter() - start
        log.info("reference models: test accuracy %s (%.1f s)", ", ".join(f"{a:.3f}" for a in acc), seconds)
        return {"test_accuracy": acc, "seconds": seconds}

    out = cache.get_or_compute("reference", reference_spec(cfg), compute)
    return np.load(out / "probs.npy")
