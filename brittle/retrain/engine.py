"""The retraining engine: the configured arch and trainer bound to device-resident data.

Built once per run; counterfactual tests and reference models reuse its tensors, so a test costs
only its models. Seeds of individual models derive from (run seed, target, k, replicate), so
every model is reproducible on its own and a resumed search retrains exactly what is missing.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from brittle.data.datasets import Dataset, normalized
from brittle.retrain.trainer import Job, margin
from brittle.runtime.timings import ModelClock

# The settings a trained model depends on (besides its seed and training set): the data, its
# normalisation, the arch and the trainer. Stages that train models include these in their key.
DEPENDS_ON = ("dataset.loader", "dataset.normalize", "arch", "trainer")


@dataclass
class Engine:
    """train_x float [N, C, H, W], train_y int64 [N], test_x float [M, C, H, W] on `device`."""
    build: Callable[[], nn.Module]
    trainer: Any   # a `trainer=` option: RecipeTrainer or FastTrainer
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: np.ndarray
    clock: ModelClock | None = None   # times every model (brittle/runtime/timings.py)

    @classmethod
    def from_slice(cls, cfg: DictConfig, data: Dataset, device: torch.device) -> Engine:
        """The engine of a `DEPENDS_ON` slice: the arch's model as a partial built once, the
        trainer, and the normalised images on `device`."""
        mean, std = list(cfg.dataset.normalize.mean), list(cfg.dataset.normalize.std)
        in_shape = [int(s) for s in data.train.images.shape[1:]]
        build = instantiate(cfg.arch.model, _partial_=True, in_shape=in_shape,
                            num_classes=data.num_classes)
        return cls(build, instantiate(cfg.trainer),
                   normalized(data.train.images, mean, std).to(device),
                   torch.as_tensor(data.train.labels, device=device),
                   normalized(data.test.images, mean, std).to(device),
                   data.test.labels)

    def train(self, keep: torch.Tensor, labels: torch.Tensor, seed: int) -> nn.Module:
        return self.train_many(keep, labels, [seed])[0]

    def train_many(self, keep: torch.Tensor, labels: torch.Tensor,
                   seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on the training images `keep` [K] with `labels` [N]; together
        when the trainer finds that faster."""
        with self._timed(len(seeds)):
            return self.trainer.train(self.build, self.train_x, labels, keep, seeds)

    def train_jobs(self, jobs: Sequence[Job]) -> list[nn.Module]:
        """One model per job (possibly of different tests), in order; together where the trainer
        can."""
        with self._timed(len(jobs)):
            return self.trainer.train_jobs(self.build, self.train_x, jobs)

    def _timed(self, n_models: int) -> contextlib.AbstractContextManager:
        """The clock's timing of one training call (runs record seconds per model), or nothing."""
        return self.clock.timing(n_models) if self.clock is not None else contextlib.nullcontext()

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.trainer.logits(model, x)

    def full_keep(self) -> torch.Tensor:
        return torch.arange(self.train_x.shape[0], device=self.train_x.device)

    def test_probs(self, seed: int) -> np.ndarray:
        """Softmax [M, C] on the whole test set of one model trained on the full training set."""
        model = self.train(self.full_keep(), self.train_y, seed)
        return torch.softmax(self.logits(model, self.test_x), dim=1).cpu().numpy()

    def evaluate(self, model: nn.Module, target: int) -> tuple[bool, float]:
        """(classified correctly, margin) of one trained model on test image `target`."""
        out = self.logits(model, self.test_x[target:target + 1])[0].cpu()
        label = int(self.test_y[target])
        return bool(int(out.argmax()) == label), margin(out, label)
