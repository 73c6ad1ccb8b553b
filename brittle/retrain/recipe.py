"""A training recipe: the settings of one supervised training run (epochs, batch, optimiser,
schedule, augmentation, precision), its learning-rate schedule (the paper's: linear warm-up to the
peak, then linear decay to 0) and its optimiser. RecipeTrainer (recipe_trainer.py) trains with it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from brittle.runtime.errors import BrittleError


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_fraction: float = 5 / 24
    label_smoothing: float = 0.1
    flip: bool = False
    translate: int = 0
    cutout: int = 0
    nesterov: bool = False
    optimizer: str = "sgd"   # sgd (the paper's) | adamw (transformers and mixers train with it)
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16 (precision.py)
    # translation's padding per channel, in normalised units: None pads with 0 (the mean colour);
    # the paper preset gives black, as FFCV pads the uint8 image before normalising
    translate_fill: tuple[float, ...] | None = None
    # the cutout square lies fully inside the image (FFCV) or is clipped at the border
    cutout_inside: bool = False
    # progressive resizing: [[epoch, size], ...], training images resized to `size` px from `epoch`
    # on (the paper's ImageNet recipe: [[0, 160], [11, 192]]); None trains at the stored size
    resolution: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        # lists from the config: hashable and read-only
        if self.translate_fill is not None:
            object.__setattr__(self, "translate_fill", tuple(float(v) for v in self.translate_fill))
        if self.resolution is not None:
            pairs = tuple((int(e), int(size)) for e, size in self.resolution)
            if not pairs or pairs[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:])):
                raise BrittleError(f"trainer.recipe.resolution={[list(p) for p in pairs]} is not "
                                   "valid; give [[0, size], [epoch, size], ...] with increasing "
                                   "epochs")
            object.__setattr__(self, "resolution", pairs)


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    warm = max(1, int(round(recipe.warmup_fraction * total)))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return recipe.lr * max(0.0, (total - step) / max(1, total - warm))


def optimizer_for(params: Iterable[torch.Tensor], recipe: Recipe,
                  fused: bool = False) -> torch.optim.Optimizer:
    """The recipe's optimiser. fused (CUDA): one kernel per step, and an fp16 gradient scaler
    checks for overflow on the device instead of reading it back to the host every step."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay,
                                 fused=fused or None)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, fused=fused or None,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    raise BrittleError(f"recipe optimizer={recipe.optimizer} is not valid; use sgd or adamw")
