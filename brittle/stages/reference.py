"""Reference stage: models trained on the full data, whose test softmax decides targets and flips.

Writes `probs.npy` float32 [n_models, N_test, C] into the stage cache, keyed by the engine's
settings, `reference.n_models` and the seed: a sweep over scorers, tasks or searches trains the
reference models once.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON
from brittle.retrain.engine import Engine
from brittle.runtime.execution import Execution
from brittle.runtime.seeds import Stream, model_seed
from brittle.runtime.stagetimes import timed_stage
from brittle.stages.keys import key_of

log = logging.getLogger(__name__)

DEPENDS_ON = (*ENGINE_DEPENDS_ON, "reference.n_models", "seed")

@timed_stage("reference")
def run(cfg: DictConfig, ex: Execution, engine: Engine) -> np.ndarray:
    """Test-set softmax of `reference.n_models` full-data models, float32 [R, M, C]."""
    n_models, seed = int(cfg.reference.n_models), int(cfg.seed)

    def compute(tmp: Path) -> dict:
        start = time.perf_counter()
        probs = np.stack([engine.test_probs(model_seed(seed, Stream.REFERENCE, r))
                          for r in range(n_models)]).astype(np.float32)
        np.save(tmp / "probs.npy", probs)
        acc = [float((p.argmax(1) == engine.test_y).mean()) for p in probs]
        seconds = time.perf_counter() - start
        log.info("reference models: test accuracy %s (%.1f s)", ", ".join(f"{a:.3f}" for a in acc),
                 seconds)
        return {"test_accuracy": acc, "seconds": seconds}

    out = ex.cache.get_or_compute("reference", key_of(cfg), compute)
    return np.load(out / "probs.npy")
