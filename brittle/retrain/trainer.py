"""The Trainer interface: what every `trainer=` option does (train models from scratch, read them
out). Implementations: RecipeTrainer (recipe_trainer.py) and FastTrainer (airbench.py)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Job:
    """One model to train: on x[keep] (int64 [N_keep]) with `labels` (int64 [N]), seeded by `seed`."""
    keep: torch.Tensor
    labels: torch.Tensor
    seed: int


class Trainer(ABC):
    """A `trainer=` option: trains models from scratch and reads them out."""

    label: str = "?"

    @abstractmethod
    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep] (x float [N, C, H, W] on the device, labels int64 [N])."""

    def train_jobs(self, build: Callable[[], nn.Module], x: torch.Tensor, jobs: Sequence[Job]) -> list[nn.Module]:
        """One model per job, in order: the models of many counterfactual tests at once (a
        lockstep search round). Here each run of jobs that shares a training set goes to `train`
        (so a test's models train together as they always do); a trainer that can train models
        of different training sets together overrides this."""
        models: list[nn.Module] = []
        start = 0
        while start < len(jobs):
            end = start + 1
            while end < len(jobs) and jobs[end].keep is jobs[start].keep and jobs[end].labels is jobs[start].labels:
                end += 1
            models += self.train(build, x, jobs[start].labels, jobs[start].keep, [j.seed for j in jobs[start:end]])
            start = end
        return models

    @abstractmethod
    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """float32 [M, classes] of x [M, C, H, W]."""
