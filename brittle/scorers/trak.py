"""TRAK scorer through MadryLab's `traker` package (optional extra `.[trak]`).

Trains `n_models` classifiers of the retraining arch (cached as checkpoints), featurizes the
training set with projected per-sample gradients (BasicProjector on CPU, the CUDA projector on a
GPU when `fast_jl` is installed), and scores the targets. Higher score = more positive influence.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from brittle.errors import BrittleError
from brittle.retrain.engine import model_seed
from brittle.retrain.reference import reference_spec
from brittle.scorers.base import ScoreContext, restrict_to_pools

log = logging.getLogger(__name__)

_TRAK_STREAM = 11_000_003


def _require_traker():
    try:
        import trak  # noqa: F401
    except ImportError:
        raise BrittleError("scorer=trak needs the traker package: pip install -e '.[trak]' "
                           "(or pick another scorer)") from None


class Trak:
    def __init__(self, n_models: int = 5, proj_dim: int = 512, train_fraction: float = 1.0,
                 batch_size: int = 256, label_conditioning: bool = True):
        _require_traker()
        if n_models < 1 or proj_dim < 1 or not 0 < train_fraction <= 1:
            raise BrittleError(f"scorer settings out of range: n_models={n_models} (>= 1), "
                               f"proj_dim={proj_dim} (>= 1), train_fraction={train_fraction} (0, 1]")
        self.n_models, self.proj_dim, self.train_fraction = int(n_models), int(proj_dim), float(train_fraction)
        self.batch_size, self.label_conditioning = int(batch_size), label_conditioning
        self.needs_features = False
        self._ctx: ScoreContext | None = None
        self._checkpoints: list[dict] = []

    def prepare(self, ctx: ScoreContext) -> None:
        self._ctx = ctx
        spec = {**reference_spec(ctx.cfg), "n_models": self.n_models, "fraction": self.train_fraction}
        engine = ctx.engine

        def compute(tmp: Path) -> dict:
            start = time.perf_counter()
            n = engine.train_x.shape[0]
            states = []
            for j in range(self.n_models):
                seed = model_seed(ctx.cfg.seed, _TRAK_STREAM, j)
                keep = np.sort(np.random.default_rng(seed).choice(n, int(round(self.train_fraction * n)),
                                                                  replace=False))
                model = engine.train(torch.as_tensor(keep, device=engine.train_x.device), engine.train_y, seed)
                states.append({k: v.detach().cpu() for k, v in model.state_dict().items()})
            torch.save(states, tmp / "models.pt")
            return {"seconds": time.perf_counter() - start}

        out = ctx.cache.get_or_compute("trak-models", spec, compute)
        self._checkpoints = torch.load(out / "models.pt", map_location="cpu", weights_only=True)
        self.models_seconds = float(ctx.cache.meta(out).get("seconds", 0.0))

    def dense_scores(self, query_ids: np.ndarray) -> np.ndarray:
        """TRAK scores [T, N_train] of the given test indices."""
        from trak import TRAKer

        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("Trak.prepare must run before ranking")
        engine = ctx.engine
        device = engine.train_x.device
        save_dir = Path(ctx.work_dir) / "trak"
        shutil.rmtree(save_dir, ignore_errors=True)
        traker = TRAKer(model=engine.build().to(device), task="image_classification",
                        train_set_size=engine.train_x.shape[0], save_dir=str(save_dir),
                        device=str(device), proj_dim=self.proj_dim, use_half_precision=False,
                        logging_level=logging.WARNING)
        x, y = engine.train_x, engine.train_y
        for j, state in enumerate(self._checkpoints):
            traker.load_checkpoint(state, model_id=j)
            for start in range(0, x.shape[0], self.batch_size):
                batch = (x[start:start + self.batch_size], y[start:start + self.batch_size])
                traker.featurize(batch=batch, num_samples=batch[0].shape[0])
        traker.finalize_features()
        qx = engine.test_x[torch.as_tensor(query_ids, device=device)]
        qy = torch.as_tensor(engine.test_y[query_ids], device=device)
        for j, state in enumerate(self._checkpoints):
            traker.start_scoring_checkpoint(exp_name="targets", checkpoint=state, model_id=j,
                                            num_targets=len(query_ids))
            traker.score(batch=(qx, qy), num_samples=len(query_ids))
        scores = np.asarray(traker.finalize_scores(exp_name="targets"), dtype=np.float64).T
        # TRAK's stored state: its features and checkpoints (what scoring new targets needs)
        self.bytes_stored = sum(p.stat().st_size for p in save_dir.rglob("*") if p.is_file()) + \
            sum(v.numel() * v.element_size() for s in self._checkpoints for v in s.values())
        shutil.rmtree(save_dir, ignore_errors=True)
        return scores

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        return restrict_to_pools(self.dense_scores(np.asarray(query_ids)), train_labels, query_labels,
                                 self.label_conditioning)

