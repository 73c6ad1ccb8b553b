"""Bank stage: m models trained on random alpha-subsets of the training set, cached.

Stores masks bool [m, N_train] and test margins float32 [m, N_test] (correct logit minus the
highest other logit). Datamodels are fitted on one bank ('datamodels' seed stream) and the Linear
Datamodeling Score evaluates any scorer on another ('lds'), so a method is never scored on the
models it was fitted to. The pipeline runs it for both (brittle/pipeline.py). Key: the engine's
settings, the seed, m, alpha and the purpose.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON
from brittle.retrain.engine import Engine
from brittle.retrain.weighted import same_order_trainer
from brittle.runtime.cache import StageCache
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import Execution
from brittle.runtime.seeds import model_seed, single_run_seed, stream
from brittle.runtime.stagetimes import timed_stage
from brittle.stages.keys import key_of

log = logging.getLogger(__name__)

DEPENDS_ON = (*ENGINE_DEPENDS_ON, "seed")

@dataclass(frozen=True)
class Bank:
    masks: np.ndarray    # bool [m, N_train]
    margins: np.ndarray  # float32 [m, N_test]
    seconds: float       # training time of the bank (recorded when it was built)


def margins_of(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Correct-class logit minus the highest other logit, per row of logits [M, C]."""
    correct = out.gather(1, labels[:, None]).squeeze(1)
    other = out.scatter(1, labels[:, None], float("-inf")).max(1).values
    return correct - other


def key(cfg: DictConfig, n_models: int, alpha: float, purpose: str) -> dict:
    return {**key_of(cfg), "n_models": int(n_models), "alpha": float(alpha), "purpose": purpose}


@timed_stage("bank")
def run(cfg: DictConfig, ex: Execution, engine: Engine, n_models: int, alpha: float,
        purpose: str = "datamodels") -> Bank:
    """Train (or load) `n_models` models on random `alpha`-subsets; `purpose` picks an
    independent seed stream ('datamodels' to fit on, 'lds' to evaluate on). 'lds_same_order':
    every model is the run's single seeded run with the images outside its subset weighted 0
    (MAGIC's single-model setting, brittle/retrain/weighted.py)."""
    if not 0 < alpha < 1:
        raise BrittleError(f"bank alpha={alpha} is out of range; use 0 < alpha < 1")
    if n_models < 2:
        raise BrittleError(f"bank n_models={n_models} is out of range; use >= 2")
    seed, bank_stream = int(cfg.seed), stream(purpose)  # an unknown purpose fails here

    def compute(tmp: Path) -> dict:
        n = engine.train_x.shape[0]
        test_y = torch.as_tensor(engine.test_y, device=engine.train_x.device)
        masks = np.zeros((n_models, n), dtype=bool)
        margins = np.zeros((n_models, len(engine.test_y)), dtype=np.float32)
        start = time.perf_counter()
        same_order = (same_order_trainer(engine, single_run_seed(seed))
                      if purpose == "lds_same_order" else None)
        for j in range(n_models):
            model_rng_seed = model_seed(seed, bank_stream, j)
            rng = np.random.default_rng(model_rng_seed)
            keep = np.sort(rng.choice(n, size=int(round(alpha * n)), replace=False))
            masks[j, keep] = True
            kept = torch.as_tensor(keep, device=engine.train_x.device)
            model = (same_order(kept) if same_order is not None
                     else engine.train(kept, engine.train_y, model_rng_seed))
            margins[j] = margins_of(engine.logits(model, engine.test_x), test_y).cpu().numpy()
            if (j + 1) % max(1, n_models // 10) == 0:
                log.info("subset bank: %d/%d models (%.1f s)", j + 1, n_models,
                         time.perf_counter() - start)
        np.save(tmp / "masks.npy", masks)
        np.save(tmp / "margins.npy", margins)
        return {"seconds": time.perf_counter() - start}

    out = ex.cache.get_or_compute("bank", key(cfg, n_models, alpha, purpose), compute)
    return Bank(np.load(out / "masks.npy"), np.load(out / "margins.npy"),
                float(StageCache.meta(out).get("seconds", 0.0)))
