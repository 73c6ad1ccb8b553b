"""Grad-Cos scorer (Hanawa et al.): cosine similarity of per-sample loss gradients.

The gradients are those of one supervised classifier of the retraining arch trained on the full
data (cached by the models stage); every parameter counts. Not class-filtered by default, as in
the paper's appendix A.5.1; the cosines are its signed LDS scores.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from brittle.runtime.errors import BrittleError
from brittle.runtime.memory import budget, rows_within
from brittle.scorers.base import (
    Cost,
    ModelRequest,
    Scorer,
    ScorerModels,
    TargetSet,
    TrainSet,
    check_pool,
)


def per_sample_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Flattened loss gradients [B, n_params] of x [B, ...] with labels y [B] (eval mode)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g.reshape(x.shape[0], -1) for g in grads.values()], dim=1)


class GradCos(Scorer):
    """Cosine of per-sample loss gradients; not class-filtered, as in the paper's appendix."""

    method = "Grad-Cos"
    needs_features = False
    signed_by_label = False
    paper_pool = "all"

    def __init__(self, batch_size: int = 128, pool: str = "all",
                 lds_sparsity: float = 1.0, memory_budget: int = 0):
        self.batch_size, self.pool = int(batch_size), check_pool(pool)
        # bytes for gradients; 0: half the device's free memory
        self.memory_budget = int(memory_budget)
        self.lds_sparsity = float(lds_sparsity)

    def models_needed(self) -> ModelRequest:
        return ModelRequest("gradcos", 1, 1.0)

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        """The one supervised model whose gradients are compared (trained once, cached)."""
        super().prepare(train, models, device)
        if models is None or len(models.states) != 1:
            raise BrittleError("scorer=gradcos trains a model: run it through the pipeline")
        self._engine, self._seconds = models.engine, models.seconds
        self._model = models.model(models.states[0])
        self._bytes = sum(p.numel() * p.element_size() for p in self._model.parameters())

    def scores(self, targets: TargetSet) -> np.ndarray:
        """Cosine similarities float64 [T, N_train] between target and training-sample gradients.

        Gradients are [rows, n_params] float32 (n_params is 6.6M for ResNet-9): the targets go in
        sub-batches that fit the memory budget with one batch of training gradients beside them,
        and the training gradients are recomputed for each sub-batch, trading time for memory
        only where the targets' gradients would not fit at once."""
        engine, model = self._engine, self._model
        device = engine.train_x.device
        ids = np.asarray(targets.ids)
        out = np.empty((len(ids), engine.train_x.shape[0]))
        rows = self.target_rows(len(ids), device)
        for lo in range(0, len(ids), rows):
            sub = torch.as_tensor(ids[lo:lo + rows], device=device)
            yq = torch.as_tensor(engine.test_y[ids[lo:lo + rows]], device=device)
            gq = F.normalize(per_sample_grads(model, engine.test_x[sub], yq), dim=1)
            for start in range(0, engine.train_x.shape[0], self.batch_size):
                sl = slice(start, start + self.batch_size)
                g = F.normalize(per_sample_grads(model, engine.train_x[sl], engine.train_y[sl]),
                                dim=1)
                out[lo:lo + len(sub), sl] = (gq @ g.T).cpu().numpy()
        return out

    def target_rows(self, n_targets: int, device: torch.device) -> int:
        """Targets whose gradients are held together: the budget less one training batch's
        gradients (and their vmap working copy), over one target's."""
        row = self._bytes               # one float32 gradient value per float32 parameter
        room = budget(device, self.memory_budget) - 2 * self.batch_size * row
        return rows_within(room, 2 * row, n_targets)

    def cost(self) -> Cost:
        return Cost(1, self._seconds, int(self._bytes))
