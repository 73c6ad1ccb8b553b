"""Models stage: classifiers that model-based scorers (TRAK, Datamodels, Grad-Cos) train for
themselves, cached and handed to them through a `ModelProvider` (brittle/scorers/base.py).

Key: the engine's settings and the seed (as the bank stage), plus the purpose, the number of
models and the fraction of the training set each sees. Each purpose has its own seed stream, so
a scorer's models are independent of the reference, bank and counterfactual models.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brittle.execution import Execution
from brittle.retrain.engine import Retrainer, model_seed
from brittle.stages import bank as bank_stage
from brittle.stages.spec import key_of

log = logging.getLogger(__name__)

DEPENDS_ON = bank_stage.DEPENDS_ON

_STREAMS = {"trak": 11_000_003, "gradcos": 13_000_001}


@dataclass
class TrainedModels:
    """A `ModelProvider` bound to one run: its engine, cache and scratch directory."""
    spec: DictConfig
    ex: Execution
    engine: Retrainer

    @property
    def seed(self) -> int:
        return int(self.spec.seed)

    @property
    def work_dir(self) -> Path:
        return self.ex.run_dir

    def checkpoints(self, purpose: str, n_models: int, fraction: float) -> tuple[list[dict], float]:
        """State dicts of `n_models` models, each on a seeded random `fraction` of the training
        set (all of it at 1.0), and the seconds their training took when they were built."""
        engine, stream = self.engine, _STREAMS[purpose]

        def compute(tmp: Path) -> dict:
            start = time.perf_counter()
            n = engine.train_x.shape[0]
            states = []
            for j in range(n_models):
                seed = model_seed(self.seed, stream, j)
                keep = np.sort(np.random.default_rng(seed).choice(n, int(round(fraction * n)), replace=False))
                model = engine.train(torch.as_tensor(keep, device=engine.train_x.device), engine.train_y, seed)
                states.append({k: v.detach().cpu() for k, v in model.state_dict().items()})
            torch.save(states, tmp / "models.pt")
            return {"seconds": time.perf_counter() - start}

        spec = {**key_of(self.spec), "purpose": purpose, "n_models": int(n_models), "fraction": float(fraction)}
        out = self.ex.cache.get_or_compute("models", spec, compute)
        states = torch.load(out / "models.pt", map_location="cpu", weights_only=True)
        return states, float(self.ex.cache.meta(out).get("seconds", 0.0))

    def model(self, state: dict) -> torch.nn.Module:
        """A model of the engine's arch on its device, holding `state`."""
        net = self.engine.build().to(self.engine.train_x.device)
        net.load_state_dict(state)
        return net.eval()

    def bank(self, n_models: int, alpha: float, purpose: str) -> bank_stage.Bank:
        return bank_stage.run(self.spec, self.ex, self.engine, n_models, alpha, purpose)
