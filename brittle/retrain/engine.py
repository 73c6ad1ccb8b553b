"""The retraining engine: the configured arch and trainer bound to device-resident data.

Built once per run; counterfactual tests and reference models reuse its tensors, so a test costs
only its trainings. Seeds of individual models derive from (run seed, target, k, replicate), so
every model is reproducible on its own and a resumed search retrains exactly what is missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from brittle.config import resolve_device
from brittle.data import Dataset
from brittle.embed import normalized
from brittle.retrain.trainer import margin


def model_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts; independent streams for distinct part tuples."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


@dataclass
class Retrainer:
    """train_x float [N, C, H, W], train_y int64 [N], test_x float [M, C, H, W] on `device`."""
    build: Callable[[], nn.Module]
    trainer: Any   # a `trainer=` option: RecipeTrainer or airbench.FastTrainer
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: np.ndarray

    @classmethod
    def from_config(cls, cfg: DictConfig, data: Dataset) -> "Retrainer":
        device = resolve_device(cfg)
        mean, std = list(cfg.dataset.normalize.mean), list(cfg.dataset.normalize.std)
        in_shape = tuple(int(s) for s in data.train.images.shape[1:])
        num_classes = data.num_classes

        def build() -> nn.Module:
            return instantiate(cfg.arch.model, in_shape=list(in_shape), num_classes=num_classes)

        return cls(build, instantiate(cfg.trainer),
                   normalized(data.train.images, mean, std).to(device),
                   torch.as_tensor(data.train.labels, device=device),
                   normalized(data.test.images, mean, std).to(device),
                   data.test.labels)

    def train(self, keep: torch.Tensor, labels: torch.Tensor, seed: int) -> nn.Module:
        return self.train_many(keep, labels, [seed])[0]

    def train_many(self, keep: torch.Tensor, labels: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on the training images `keep` [K] with `labels` [N]; together
        when the trainer finds that faster."""
        return self.trainer.train(self.build, self.train_x, labels, keep, seeds)

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
