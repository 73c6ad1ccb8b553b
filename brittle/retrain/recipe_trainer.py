"""The `trainer=` group: how the retrained classifiers are trained and read out.

RecipeTrainer trains with a Recipe (recipe.py): `trainer=arch_recipe` takes the arch's own recipe,
`trainer=paper` the paper's ResNet-9 recipe, `trainer=cpu` an arch's recipe shortened for a CPU.
An MLP always trains in a stack (stacked.py), the N models of a test or of a lockstep round
together and a lone model as a stack of one, so its weights do not depend on its companions;
other archs train one after another, or on CUDA streams or vmapped (together.py).
`trainer=fast` is the airbench-class procedure (fast_trainer.py).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from brittle.retrain.augment import augment, resized
from brittle.retrain.loop import Autocast, Fit, Pending, batches, run, seeded
from brittle.retrain.recipe import Recipe, lr_at, optimizer_for, schedule_steps
from brittle.retrain.stacked import stackable, train_stacked_jobs
from brittle.retrain.together import StepTrainer, groups
from brittle.retrain.trainer import Job, logits
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import plain
from brittle.runtime.precision import PRECISIONS, Precision

_TOGETHER = ("auto", "stacked", "loop", "streams", "vmap")


def recipe_from(recipe: Recipe | Mapping[str, Any], **overrides: Any) -> Recipe:
    if isinstance(recipe, DictConfig):
        recipe = plain(recipe)
    fields = dict(recipe.__dict__ if isinstance(recipe, Recipe) else recipe)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Recipe(**fields)
    except TypeError as err:
        raise BrittleError(f"trainer recipe is not valid ({err}); fields: "
                           f"{sorted(Recipe.__dataclass_fields__)}") from None


class RecipeTrainer(StepTrainer):
    """Trains models from scratch with one Recipe. together: auto (stack the N models of a test
    when the arch allows it: MLPs), stacked (require it), loop (one by one), streams or vmap
    (any random-free arch, `concurrent` models at a time: together.py)."""

    def __init__(self, recipe: Recipe | Mapping[str, Any], together: str = "auto",
                 epochs: int | None = None, batch_size: int | None = None,
                 name: str = "arch_recipe", max_stack: int = 256, concurrent: int = 8):
        self.name = name  # display name in tables
        self.max_stack = max(1, int(max_stack))  # copies in one stacked network (bounds its memory)
        self._set_together(together, concurrent, _TOGETHER)
        self.recipe = recipe_from(recipe, epochs=epochs, batch_size=batch_size)
        if self.recipe.precision not in PRECISIONS:
            raise BrittleError(f"recipe precision={self.recipe.precision} is not valid; use one of "
                               f"{list(PRECISIONS)}")

    def fit(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor,
            gen: torch.Generator) -> Fit:
        return fit_steps(model, self.recipe, x, labels, keep, gen)

    def autocast(self, device: torch.device) -> Autocast:
        return Precision.of(self.recipe.precision, device).autocast

    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep] (x float [N, C, H, W], labels int64 [N])."""
        if self.together not in ("auto", "stacked"):
            return super().train(build, x, labels, keep, seeds)
        return self.train_jobs(build, x, [Job(keep, labels, seed) for seed in seeds])

    def train_jobs(self, build: Callable[[], nn.Module], x: torch.Tensor,
                   jobs: Sequence[Job]) -> list[nn.Module]:
        """The models of many tests, in order. A stackable arch (auto, stacked) trains every
        model in a stack, jobs of equal training-set size together (at most `max_stack`), a
        stack of one included: a model's arithmetic is the same whichever models train beside
        it, so on a CPU its logits are bitwise those of the same seed trained in any other
        grouping (a test's 5, 3 + 1 + 1, alone, or in a lockstep round beside other targets').
        Other archs train one by one (auto), or as StepTrainer does (streams, vmap)."""
        if self.together not in ("auto", "stacked"):
            return super().train_jobs(build, x, jobs)
        if not self.arch_fact(build, "stackable", stackable):
            if self.together == "stacked":
                raise BrittleError("trainer.together=stacked needs an MLP arch (arch=mlp); "
                                   "use trainer.together=auto or loop")
            return [self.train_one(build, x, j.labels, j.keep, j.seed) for j in jobs]
        placed: dict[int, nn.Module] = {}
        for part in groups(jobs, self.max_stack):
            placed.update(zip(part, train_stacked_jobs(build, self.recipe, x,
                                                       [jobs[i] for i in part])))
        return [placed[i] for i in range(len(jobs))]

    def logits(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """float32 [M, classes] for x [M, C, H, W]."""
        return logits(model, x, precision=self.recipe.precision)


def train_one(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seed: int) -> nn.Module:
    """Train one model from scratch on x[keep] with labels[keep]. Deterministic per seed on CPU
    (brittle/retrain/loop.py: init, data order, augmentation and dropout follow the seed).

    x: float [N, C, H, W] on the device; labels: int64 [N]; keep: int64 [N_keep] indices.
    """
    device = x.device
    with seeded(seed, device) as gen:
        model = build().to(device)
        autocast = Precision.of(recipe.precision, device).autocast
        run(model, fit_steps(model, recipe, x, labels, keep, gen), autocast)
    return model.eval()


def fit_steps(model: nn.Module, recipe: Recipe, x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, gen: torch.Generator) -> Fit:
    """The recipe's training of `model` on x[keep] as a Fit (loop.py): per step the batch drawn
    and augmented with `gen`, the scheduled learning rate, and after the backward pass the
    optimiser's step. Nothing in it reads a device value back to the host (on CUDA the fused
    optimiser takes the fp16 scaler's overflow check on the device)."""
    cuda = x.device.type == "cuda"
    opt = optimizer_for(model.parameters(), recipe, fused=cuda)
    scaler = Precision.of(recipe.precision, x.device).scaler()
    if cuda and x.dim() == 4:
        model.to(memory_format=torch.channels_last)  # the tensor-core layout of convolutions
    model.train()
    loss = functools.partial(F.cross_entropy, label_smoothing=recipe.label_smoothing)
    span = schedule_steps(recipe, int(keep.shape[0]), int(x.shape[0]))
    for step in batches(int(keep.shape[0]), recipe.batch_size, recipe.epochs, [gen]):
        idx = keep[step.positions[0]]
        xb = augment(resized(x[idx], recipe, step.epoch), recipe, gen)
        if cuda and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = lr_at(step.step, span, recipe)
        opt.zero_grad(set_to_none=True)
        yield Pending(xb, labels[idx], loss, scaler.scale)
        scaler.step(opt)
        scaler.update()
    opt.zero_grad(set_to_none=True)   # the trained model keeps no gradients
