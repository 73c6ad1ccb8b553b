"""Grad-Cos scorer (Hanawa et al.): cosine similarity of per-sample loss gradients.

The gradients are those of one supervised classifier of the retraining arch trained on the full
data; every parameter counts. Not class-filtered by default, as in the paper's appendix A.5.1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from brittle.retrain.engine import model_seed
from brittle.scorers.base import ScoreContext, restrict_to_pools

_GRADCOS_STREAM = 13_000_001


def per_sample_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Flattened loss gradients [B, n_params] of x [B, ...] with labels y [B] (eval mode)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)


class GradCos:
    def __init__(self, batch_size: int = 128, label_conditioning: bool = False):
        self.batch_size, self.label_conditioning = int(batch_size), label_conditioning
        self.needs_features = False
        self.n_models = 1
        self._ctx: ScoreContext | None = None
        self._model: torch.nn.Module | None = None

    def prepare(self, ctx: ScoreContext) -> None:
        self._ctx = ctx
        engine = ctx.engine
        self._model = engine.train(engine.full_keep(), engine.train_y,
                                   model_seed(ctx.cfg.seed, _GRADCOS_STREAM)).eval()
        self.bytes_stored = sum(p.numel() * p.element_size() for p in self._model.parameters())

    def dense_scores(self, query_ids: np.ndarray) -> np.ndarray:
        """Cosine similarities [T, N_train] between target and training-sample gradients."""
        engine, model = self._ctx.engine, self._model
        device = engine.train_x.device
        idx = torch.as_tensor(query_ids, device=device)
        yq = torch.as_tensor(engine.test_y[query_ids], device=device)
        gq = F.normalize(per_sample_grads(model, engine.test_x[idx], yq), dim=1)
        out = []
        for start in range(0, engine.train_x.shape[0], self.batch_size):
            sl = slice(start, start + self.batch_size)
            g = F.normalize(per_sample_grads(model, engine.train_x[sl], engine.train_y[sl]), dim=1)
            out.append(gq @ g.T)
        return torch.cat(out, dim=1).cpu().numpy().astype(np.float64)

    def scores(self, train: np.ndarray, train_labels: np.ndarray, queries: np.ndarray,
               query_labels: np.ndarray, query_ids: np.ndarray) -> np.ndarray:
        return restrict_to_pools(self.dense_scores(np.asarray(query_ids)), train_labels, query_labels,
                                 self.label_conditioning)

