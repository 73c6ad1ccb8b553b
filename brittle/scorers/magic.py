"""MAGIC (Ilyas & Engstrom 2025, arXiv 2504.16430) as a scorer: the exact metagradient of each
target's margin with respect to every training image's loss weight, through brittle's own seeded
training run of the retraining arch and recipe.

Per seed, the weighted run (brittle/retrain/weighted.py) with every weight 1 is brittle's own
training of that seed on the full training set (same initialisation, data order, augmentation,
schedule and SGD arithmetic); its forward pass keeps a checkpoint every `checkpoint_every` steps
(null: ceil(sqrt(steps))), and each chunk of targets is carried back through it
(brittle/retrain/metagradient.py). A score is d margin / d w_i averaged over `n_models` seeds
(the search asks about the average training run): positive means that giving image i less
weight lowers the margin, so it supports the target. Removal is weight 0, and to first order
margin(S) - margin(all) = -sum over removed i of the score: the scores are the attributions
(`signed_by_label` False), dense in the LDS (`lds_sparsity` 1.0), ranked over every training
image (`pool: all`, as the influence estimators).

The first seed is the run's single model (brittle/runtime/seeds.py SINGLE_RUN), whose weighted
runs are the same-order LDS bank (`eval=lds_same_order`): with `n_models: 1` that bank measures
MAGIC in its paper's single-model setting. The others come from MAGIC's own stream.

Cost: `n_models` training runs (their forward passes, timed as `models_seconds`) and, per chunk of
targets, one replay and one backward pass per seed, batched over the targets. Memory: the
checkpoints and one segment's states, plus per target its cotangents and the batched step's
work; `plan_models` logs both before any training. Archs with dropout, other optimisers and
precisions are refused (brittle/retrain/replayable.py); BatchNorm's running statistics are part
of the replayed state (brittle/retrain/batchstats.py).
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch

from brittle.retrain.engine import Engine
from brittle.retrain.metagradient import Forward, forward, memory_bytes, metagradients
from brittle.retrain.replayable import check_engine
from brittle.retrain.weighted import WeightedRun
from brittle.runtime.errors import BrittleError
from brittle.runtime.memory import budget, rows_within
from brittle.runtime.seeds import Stream, model_seed, single_run_seed
from brittle.scorers.base import Cost, Scorer, ScorerModels, TargetSet, TrainSet, check_pool

log = logging.getLogger(__name__)

WHO = "scorer=magic"


class Magic(Scorer):
    """Exact metagradients of the targets' margins through `n_models` seeded training runs."""

    method = "MAGIC"
    needs_features = False
    signed_by_label = False
    paper_pool = "all"

    def __init__(self, n_models: int = 3, checkpoint_every: int | None = None, seed: int = 0,
                 pool: str = "all", lds_sparsity: float = 1.0, memory_budget: int = 0):
        if n_models < 1 or (checkpoint_every is not None and checkpoint_every < 1):
            raise BrittleError(f"scorer settings out of range: n_models={n_models} (>= 1), "
                               f"checkpoint_every={checkpoint_every} (>= 1, or null: sqrt of "
                               "the steps)")
        self.n_models, self.seed = int(n_models), int(seed)
        self.checkpoint_every = None if checkpoint_every is None else int(checkpoint_every)
        self.pool, self.lds_sparsity = check_pool(pool), float(lds_sparsity)
        self.memory_budget = int(memory_budget)   # bytes a pass of targets may use (0: half free)
        self._runs: list[tuple[WeightedRun, Forward]] = []
        self._seconds, self._bytes = 0.0, 0

    def seeds(self) -> list[int]:
        """The runs' seeds: the single model's, then MAGIC's own stream."""
        return [single_run_seed(self.seed),
                *(model_seed(self.seed, Stream.MAGIC, j) for j in range(1, self.n_models))]

    def plan_models(self, engine: Engine, arch: str | None = None) -> int:
        """Before any training: refuse what the replay cannot follow (one error line), log the
        memory the backward passes take, and return the training runs this scorer makes."""
        recipe = check_engine(engine, WHO, arch)
        shared, per_target = memory_bytes(engine.build, recipe, engine.train_x,
                                          self.checkpoint_every)
        log.info("scorer=magic: %d training runs, each replayed once per pass of targets; "
                 "memory about %.1f MB (checkpoints and one segment) + %.2f MB per target",
                 self.n_models, shared / 2**20, per_target / 2**20)
        return self.n_models

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        """Each seed's forward pass, with its checkpoints (once per run)."""
        super().prepare(train, models, device)
        if models is None:
            raise BrittleError("scorer=magic trains its own runs: run it through the pipeline")
        engine = self._engine = models.engine
        recipe = check_engine(engine, WHO)
        x, y = engine.train_x, engine.train_y
        ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        start = time.perf_counter()
        self._runs = []
        for seed in self.seeds():
            run = WeightedRun(engine.build, recipe, x, y, seed)
            self._runs.append((run, forward(run, ones, self.checkpoint_every)))
        self._seconds = time.perf_counter() - start
        self._shared, self._per_target = memory_bytes(engine.build, recipe, x,
                                                      self.checkpoint_every)
        # what scoring new targets needs: every run's checkpoints
        self._bytes = sum(state.nbytes() for _, fwd in self._runs for state in fwd.kept.values())

    def scores(self, targets: TargetSet) -> np.ndarray:
        """Metagradients float64 [T, N_train] of the targets' margins, mean over the seeds."""
        engine = self._engine
        x, device = engine.train_x, engine.train_x.device
        ids = np.asarray(targets.ids)
        tx = engine.test_x[torch.as_tensor(ids, device=device)]
        ty = torch.as_tensor(engine.test_y[ids], device=device)
        ones = torch.ones(x.shape[0], dtype=x.dtype, device=device)
        rows = rows_within(budget(device, self.memory_budget) - self._shared, self._per_target,
                           len(ids))
        out = np.zeros((len(ids), x.shape[0]))
        for j, (run, fwd) in enumerate(self._runs):
            start = time.perf_counter()
            for lo in range(0, len(ids), rows):
                grads = metagradients(run, ones, tx[lo:lo + rows], ty[lo:lo + rows], fwd)
                out[lo:lo + rows] += grads.double().cpu().numpy()
            log.info("scorer=magic: run %d/%d, %d targets carried back in %.1f s", j + 1,
                     len(self._runs), len(ids), time.perf_counter() - start)
        return out / len(self._runs)

    def cost(self) -> Cost:
        return Cost(self.n_models, self._seconds, int(self._bytes))
