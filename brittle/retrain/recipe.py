"""A training recipe: the settings of one supervised training run (epochs, batch, optimiser,
schedule, augmentation, precision), its learning-rate schedule (the paper's: linear warm-up to the
peak, then linear decay to 0) and its optimiser. RecipeTrainer (recipe_trainer.py) trains with it.

`schedule` says which steps the schedule spans. `actual` (the default): the steps the model takes,
so every model warms up and decays to 0 over its own training, whatever was removed. `reference`:
the paper's reference code (train_utils.py `train()`: `iters_per_epoch = 50000 // batch_size` and
`np.interp` over `[0, 5, epochs]` epochs of them, through a LambdaLR), which spans the steps of the
whole training set whatever was removed, and starts from lr 0. A model trained without some images
takes fewer steps (its loader drops the incomplete batch of the kept images) and stops before the
decay reaches 0: at batch 512 with 1,280 of 50,000 removed, 95 of 97 steps an epoch. A named rule
rather than a step count (97): it follows the batch size and the training set's size
(`dataset.train_subset`), and it carries the first step's lr 0, which a count cannot say.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from brittle.retrain.loop import step_count
from brittle.runtime.errors import BrittleError

SCHEDULES = ("actual", "reference")


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
    # the steps the lr schedule spans (module docstring): actual (the model's) | reference (the
    # whole training set's, lr 0 at the first step: the reference code's train())
    schedule: str = "actual"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise BrittleError(f"trainer.recipe.schedule={self.schedule} is not valid; use one of "
                               f"{', '.join(SCHEDULES)}")
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


def schedule_steps(recipe: Recipe, n_kept: int, n_train: int) -> int:
    """The number of steps the lr schedule spans for a model trained on n_kept of the run's
    n_train training images: the steps it takes (`actual`), or those all n_train would give
    (`reference`)."""
    n = n_train if recipe.schedule == "reference" else n_kept
    return step_count(n, recipe.batch_size, recipe.epochs)[1]


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    """The lr of step `step` (from 0) of a schedule spanning `total` steps: a linear warm-up over
    the first round(warmup_fraction x total) steps to `recipe.lr`, then a linear decay reaching 0
    at `total`. `actual` counts the current step into the warm-up (the first step trains at
    lr / warm-up steps); `reference` ramps from 0 as np.interp does (the first step at lr 0)."""
    warm = max(1, int(round(recipe.warmup_fraction * total)))
    if step < warm:
        ramp = step if recipe.schedule == "reference" else step + 1
        return recipe.lr * ramp / warm
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
