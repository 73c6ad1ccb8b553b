"""TRAK scorer through MadryLab's `traker` package (optional extra `.[trak]`).

`n_models` classifiers of the retraining arch (trained and cached by the models stage) featurize
the training set once per run with projected per-sample gradients (BasicProjector on CPU, the
CUDA projector on a GPU when `fast_jl` is installed); each chunk of targets is then scored
against those features. Higher score = more positive influence. The paper's protocol ranks every
training image by its TRAK score (`pool: all`); the same-class pool is an option with its own
name.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import (
    Cost,
    ModelRequest,
    Scorer,
    ScorerModels,
    TargetSet,
    TrainSet,
    check_pool,
)


def _require_traker() -> None:
    try:
        import trak  # noqa: F401
    except ImportError:
        raise BrittleError("scorer=trak needs the traker package, brittle's trak extra: "
                           "pip install 'brittle[trak]' "
                           "(in a checkout: pip install -e '.[trak]')") from None


class Trak(Scorer):
    method = "TRAK"
    needs_features = False
    signed_by_label = False
    paper_pool = "all"

    def __init__(self, n_models: int = 5, proj_dim: int = 512, train_fraction: float = 1.0,
                 batch_size: int = 256, pool: str = "all",
                 lds_sparsity: float = 1.0):
        _require_traker()
        if n_models < 1 or proj_dim < 1 or not 0 < train_fraction <= 1:
            raise BrittleError(f"scorer settings out of range: n_models={n_models} (>= 1), "
                               f"proj_dim={proj_dim} (>= 1), "
                               f"train_fraction={train_fraction} (0, 1]")
        self.n_models, self.proj_dim = int(n_models), int(proj_dim)
        self.train_fraction = float(train_fraction)
        self.batch_size, self.pool = int(batch_size), check_pool(pool)
        self.lds_sparsity = float(lds_sparsity)
        self._chunks = 0

    def models_needed(self) -> ModelRequest:
        return ModelRequest("trak", self.n_models, self.train_fraction)

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        """Featurize the training set with every checkpoint (once per run)."""
        from trak import TRAKer

        super().prepare(train, models, device)
        if models is None or len(models.states) != self.n_models:
            raise BrittleError("scorer=trak trains models: run it through the pipeline")
        self._engine = engine = models.engine
        self._states, self._seconds = models.states, models.seconds
        save_dir = Path(tempfile.mkdtemp(prefix="trak-", dir=models.work_dir))
        weakref.finalize(self, shutil.rmtree, save_dir, True)
        self._traker = TRAKer(model=engine.build().to(engine.train_x.device),
                              task="image_classification", train_set_size=engine.train_x.shape[0],
                              save_dir=str(save_dir), device=str(engine.train_x.device),
                              proj_dim=self.proj_dim, use_half_precision=False,
                              logging_level=logging.WARNING)
        x, y = engine.train_x, engine.train_y
        for j, state in enumerate(self._states):
            self._traker.load_checkpoint(state, model_id=j)
            for start in range(0, x.shape[0], self.batch_size):
                batch = (x[start:start + self.batch_size], y[start:start + self.batch_size])
                self._traker.featurize(batch=batch, num_samples=batch[0].shape[0])
        self._traker.finalize_features()
        projector = self._traker.projector
        if getattr(projector, "num_blocks", 0) == 1 and not projector.proj_matrix_available:
            # traker's BasicProjector frees its matrix here and, in one block (proj_dim <= 100),
            # scores the same model id without rebuilding it: rebuilt from the same seeds
            projector.generate_sketch_matrix(projector.generator_states[0])
        # TRAK's stored state: its features and checkpoints (what scoring new targets needs)
        self._bytes = sum(p.stat().st_size for p in save_dir.rglob("*") if p.is_file()) + \
            sum(v.numel() * v.element_size() for s in self._states for v in s.values())

    def scores(self, targets: TargetSet) -> np.ndarray:
        """TRAK scores float64 [T, N_train] of the targets' test images."""
        engine, device = self._engine, self._engine.train_x.device
        ids = np.asarray(targets.ids)
        qx = engine.test_x[torch.as_tensor(ids, device=device)]
        qy = torch.as_tensor(engine.test_y[ids], device=device)
        name = f"targets{self._chunks}"
        self._chunks += 1
        for j, state in enumerate(self._states):
            self._traker.start_scoring_checkpoint(exp_name=name, checkpoint=state, model_id=j,
                                                  num_targets=len(ids))
            self._traker.score(batch=(qx, qy), num_samples=len(ids))
        return np.asarray(self._traker.finalize_scores(exp_name=name), dtype=np.float64).T

    def cost(self) -> Cost:
        return Cost(self.n_models, self._seconds, int(self._bytes))

    def display_name(self, backbone: str | None) -> str:
        """'TRAK d=512': the projection dimension is part of the method (the paper's is 20,480 on
        CIFAR-10, 4,096 on ImageNet), so runs of other sizes never share a table cell."""
        return f"{self.method} d={self.proj_dim}" + self._protocol_suffix()
