"""Models stage: the classifiers a model-based scorer (TRAK, Grad-Cos) asked for with
`models_needed`, trained on seeded random fractions of the training set and cached as state dicts.

Key: the engine's settings and the seed (as the bank stage), plus the purpose, the number of
models and the fraction of the training set each sees. Each purpose has its own seed stream
(brittle/runtime/seeds.py), so a scorer's models are independent of the reference, bank and
counterfactual models.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brittle.retrain.engine import Engine
from brittle.runtime.cache import StageCache
from brittle.runtime.execution import Execution
from brittle.runtime.seeds import model_seed, stream
from brittle.runtime.stagetimes import timed_stage
from brittle.scorers.base import ModelRequest
from brittle.stages import bank as bank_stage
from brittle.stages.keys import key_of

log = logging.getLogger(__name__)

DEPENDS_ON = bank_stage.DEPENDS_ON


@dataclass(frozen=True)
class Checkpoints:
    """states: one state dict per model (on the CPU); seconds: their training time when built."""
    states: list[dict]
    seconds: float


def key(cfg: DictConfig, request: ModelRequest) -> dict:
    return {**key_of(cfg), "purpose": request.purpose, "n_models": int(request.n_models),
            "fraction": float(request.fraction)}


@timed_stage("models")
def run(cfg: DictConfig, ex: Execution, engine: Engine, request: ModelRequest) -> Checkpoints:
    """`request.n_models` models, each on a seeded random `request.fraction` of the training set
    (all of it at 1.0), trained once and read back from the cache."""
    seed, purpose_stream = int(cfg.seed), stream(request.purpose)

    def compute(tmp: Path) -> dict:
        start = time.perf_counter()
        n = engine.train_x.shape[0]
        states = []
        for j in range(request.n_models):
            model_rng_seed = model_seed(seed, purpose_stream, j)
            rng = np.random.default_rng(model_rng_seed)
            keep = np.sort(rng.choice(n, int(round(request.fraction * n)), replace=False))
            model = engine.train(torch.as_tensor(keep, device=engine.train_x.device),
                                 engine.train_y, model_rng_seed)
            states.append({k: v.detach().cpu() for k, v in model.state_dict().items()})
        torch.save(states, tmp / "models.pt")
        return {"seconds": time.perf_counter() - start}

    out = ex.cache.get_or_compute("models", key(cfg, request), compute)
    states = torch.load(out / "models.pt", map_location="cpu", weights_only=True)
    return Checkpoints(states, float(StageCache.meta(out).get("seconds", 0.0)))
