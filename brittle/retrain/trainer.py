"""The Trainer interface: what every `trainer=` option does (train models from scratch, read them
out). Implementations: RecipeTrainer (recipe_trainer.py) and FastTrainer (airbench.py)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import nn


class Trainer(ABC):
    """A `trainer=` option: trains models from scratch and reads them out."""

    label: str = "?"

    @abstractmethod
    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep] (x float [N, C, H, W] on the device, labels int64 [N])."""

    @abstractmethod
    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """float32 [M, classes] of x [M, C, H, W]."""
