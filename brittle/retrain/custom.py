"""`trainer=custom`: your own training loop as brittle's trainer, so a model and loop written for
`brittle.api.find_supports` run from the command line too (docs/your-model.md).

`fit` names (an import path) or is a function `fit(model, images, labels, seed)` that trains
`model` in place: model is the arch's network freshly built under `seed` on the device, images
float [N, C, H, W] and labels int64 [N] the test's modified training set (normalised as
`dataset.normalize` says), and the same seed must give the same model. Read-out is the
network's logits in eval mode. Any other trainer of your own: `trainer._target_=` a subclass of
brittle.retrain.trainer.Trainer.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from brittle.retrain.loop import build_seeded
from brittle.retrain.trainer import Trainer, logits
from brittle.runtime.errors import BrittleError

Fit = Callable[[nn.Module, torch.Tensor, torch.Tensor, int], Any]


class CustomTrainer(Trainer):
    """Trains each model with the user's `fit`, one model at a time."""

    def __init__(self, fit: str | Fit, name: str = "custom"):
        self.name = name
        self.fit = _resolved(fit)

    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep] (x float [N, C, H, W], labels int64 [N])."""
        models = []
        for seed in seeds:
            model = build_seeded(build, int(seed), x.device)
            model.train()
            self.fit(model, x[keep], labels[keep], int(seed))
            models.append(model.eval())
        return models

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """float32 [M, classes] of x [M, C, H, W]."""
        return logits(model, x, precision="fp32")


def _resolved(fit: str | Fit) -> Fit:
    if callable(fit):
        return fit
    from hydra.utils import get_method
    try:
        return get_method(str(fit))
    except Exception as err:
        raise BrittleError(f"trainer.fit={fit} cannot be imported ({type(err).__name__}); give "
                           f"the import path of your fit(model, images, labels, seed), e.g. "
                           f"trainer.fit=my_model.fit with my_model.py on the Python path"
                           ) from None
