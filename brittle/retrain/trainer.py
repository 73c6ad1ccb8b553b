"""The Trainer interface: what every `trainer=` option does (train models from scratch, read them
out), and the read-out every trainer shares (logits, margin). Implementations: RecipeTrainer
(recipe_trainer.py) and FastTrainer (fast_trainer.py); both run the one seeded step loop of
loop.py. The Engine (engine.py) binds a trainer to an arch and device-resident data."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from brittle.runtime.precision import Precision


@dataclass(frozen=True)
class Job:
    """One model to train: on x[keep] (int64 [N_keep]) with `labels` (int64 [N]), seeded by
    `seed`."""
    keep: torch.Tensor
    labels: torch.Tensor
    seed: int


class Trainer(ABC):
    """A `trainer=` option: trains models from scratch and reads them out."""

    name: str = "?"   # display name in tables

    @abstractmethod
    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep] (x float [N, C, H, W] on the device, labels int64 [N])."""

    def train_jobs(self, build: Callable[[], nn.Module], x: torch.Tensor,
                   jobs: Sequence[Job]) -> list[nn.Module]:
        """One model per job, in order: the models of many counterfactual tests at once (a
        lockstep search round). Here each run of jobs that shares a training set goes to `train`
        (so a test's models train together as they always do); a trainer that can train models
        of different training sets together overrides this."""
        models: list[nn.Module] = []
        start = 0
        while start < len(jobs):
            end = start + 1
            while (end < len(jobs) and jobs[end].keep is jobs[start].keep
                   and jobs[end].labels is jobs[start].labels):
                end += 1
            models += self.train(build, x, jobs[start].labels, jobs[start].keep,
                                 [j.seed for j in jobs[start:end]])
            start = end
        return models

    @abstractmethod
    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """float32 [M, classes] of x [M, C, H, W]."""


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024,
           precision: str = "auto") -> torch.Tensor:
    """float32 [M, num_classes] logits of x [M, C, H, W] in eval mode, in the recipe's precision."""
    policy = Precision.of(precision, x.device)
    out = []
    for start in range(0, x.shape[0], batch_size):
        with policy.autocast():
            out.append(model(x[start:start + batch_size]).float())
    return torch.cat(out)


def margin(logit: torch.Tensor, label: int) -> float:
    """Correct-class logit minus the highest other logit, for one logit vector [C]."""
    other = logit.clone()
    other[label] = -float("inf")
    return float(logit[label] - other.max())
