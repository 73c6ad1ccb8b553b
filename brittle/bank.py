"""Subset-model bank: m models trained on random alpha-subsets of the training set.

Stores masks bool [m, N_train] and test margins float32 [m, N_test] (correct logit minus the
highest other logit) in the stage cache. Datamodels are fitted on it, and the Linear Datamodeling
Score evaluates any scorer against it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brittle.artifacts import StageCache
from brittle.errors import BrittleError
from brittle.retrain.engine import Retrainer, model_seed
from brittle.retrain.reference import reference_spec

log = logging.getLogger(__name__)

# Seed streams keep banks apart: the LDS must be measured on models a datamodel never saw.
BANK_STREAMS = {"datamodels": 9_000_017, "lds": 9_000_029}


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


def subset_bank(cfg: DictConfig, engine: Retrainer, cache: StageCache, n_models: int,
                alpha: float, purpose: str = "datamodels") -> Bank:
    """Stage: train `n_models` models on random `alpha`-subsets (cached); `purpose` picks an
    independent seed stream ('datamodels' to fit on, 'lds' to evaluate on)."""
    if not 0 < alpha < 1:
        raise BrittleError(f"bank alpha={alpha} is out of range; use 0 < alpha < 1")
    if n_models < 2:
        raise BrittleError(f"bank n_models={n_models} is out of range; use >= 2")
    spec = {**reference_spec(cfg), "n_models": int(n_models), "alpha": float(alpha), "purpose": purpose}

    def compute(tmp: Path) -> dict:
        n = engine.train_x.shape[0]
        test_y = torch.as_tensor(engine.test_y, device=engine.train_x.device)
        masks = np.zeros((n_models, n), dtype=bool)
        margins = np.zeros((n_models, len(engine.test_y)), dtype=np.float32)
        start = time.perf_counter()
        for j in range(n_models):
            seed = model_seed(cfg.seed, BANK_STREAMS[purpose], j)
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(n, size=int(round(alpha * n)), replace=False))
            masks[j, keep] = True
            model = engine.train(torch.as_tensor(keep, device=engine.train_x.device), engine.train_y, seed)
            margins[j] = margins_of(engine.logits(model, engine.test_x), test_y).cpu().numpy()
            if (j + 1) % max(1, n_models // 10) == 0:
                log.info("subset bank: %d/%d models (%.1f s)", j + 1, n_models, time.perf_counter() - start)
        np.save(tmp / "masks.npy", masks)
        np.save(tmp / "margins.npy", margins)
        return {"seconds": time.perf_counter() - start}

    out = cache.get_or_compute("bank", spec, compute)
    return Bank(np.load(out / "masks.npy"), np.load(out / "margins.npy"),
                float(StageCache.meta(out).get("seconds", 0.0)))
