"""Training the N models of one counterfactual test together, as one stacked network.

For MLPs (the digits default) the N copies' layers become batched matrix products
([N, B, in] x [N, in, out]), which on a CPU is much faster than N separate small matmuls. Each
copy keeps its own initialisation (built under its own seed), its own data order and
augmentation stream, and its own loss, so it follows the same trajectory as when trained alone
(up to float rounding); SGD's momentum and weight decay act elementwise, so one optimizer over
the stacked tensors updates every copy exactly as its own optimizer would. (CNNs are not
stacked: on this project's CPU, vmapped/grouped convolutions measured slower than a loop.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from brittle.retrain.augment import augment
from brittle.retrain.loop import batches, build_seeded
from brittle.retrain.recipe import Recipe, lr_at, optimizer_for, schedule_steps
from brittle.retrain.trainer import Job
from brittle.runtime.precision import Precision
from brittle.runtime.precision import step as precision_step


def stackable(model: nn.Module) -> bool:
    """True for a plain MLP: only Flatten, Linear and ReLU layers in sequence."""
    return isinstance(model, nn.Sequential) and any(isinstance(m, nn.Linear) for m in model) and \
        all(isinstance(m, (nn.Flatten, nn.Linear, nn.ReLU)) for m in model)


def _stack(models: Sequence[nn.Sequential]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per Linear layer: weights [N, in, out] and biases [N, 1, out], leaf tensors."""
    layers = []
    for parts in zip(*(m for m in models)):
        if isinstance(parts[0], nn.Linear):
            w = torch.stack([p.weight.detach().T for p in parts]).contiguous().requires_grad_()
            b = torch.stack([p.bias.detach()[None] for p in parts]).contiguous().requires_grad_()
            layers.append((w, b))
    return layers


def _forward(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """Logits [N, B, classes] of stacked inputs x [N, B, features]."""
    for i, (w, b) in enumerate(layers):
        x = torch.baddbmm(b, x, w)
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


def train_stacked(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor,
                  labels: torch.Tensor, keep: torch.Tensor,
                  seeds: Sequence[int]) -> list[nn.Module]:
    """Train one MLP per seed on x[keep] with labels[keep], all at once; same per-seed data order,
    augmentation and initialisation as recipe_trainer.train_one (the shared loop of loop.py)."""
    return train_stacked_jobs(build, recipe, x, [Job(keep, labels, seed) for seed in seeds])


def train_stacked_jobs(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor,
                       jobs: Sequence[Job]) -> list[nn.Module]:
    """Train one MLP per job, all at once, each on its own training set x[job.keep] with its own
    labels: the models of many counterfactual tests in one stack. Every job must keep the same
    number of images (the same steps per epoch, hence one learning-rate schedule for all)."""
    device = x.device
    sizes = {int(j.keep.shape[0]) for j in jobs}
    if len(sizes) != 1:
        raise ValueError(f"stacked jobs must keep equally many images, got sizes {sorted(sizes)}")
    models = [cast(nn.Sequential, build_seeded(build, j.seed, device)) for j in jobs]
    gens = [torch.Generator(device=device).manual_seed(j.seed) for j in jobs]
    layers = _stack(models)
    # fused on CUDA: the fp16 scaler's overflow check stays on the device (no host sync a step)
    opt = optimizer_for([t for pair in layers for t in pair], recipe, fused=device.type == "cuda")
    precision = Precision.of(recipe.precision, device)  # the same policy as train_one's
    scaler = precision.scaler()
    # gathered once per step for all copies (not per copy): keeps [J, n], labels [J, N]
    keeps = torch.stack([j.keep for j in jobs])
    shared = all(j.labels is jobs[0].labels for j in jobs)
    labels = (jobs[0].labels.expand(len(jobs), -1) if shared
              else torch.stack([j.labels for j in jobs]))
    # augmentation draws from each copy's generator
    augments = recipe.flip or recipe.translate > 0 or recipe.cutout > 0
    n_kept = sizes.pop()
    span = schedule_steps(recipe, n_kept, int(x.shape[0]))
    for step in batches(n_kept, recipe.batch_size, recipe.epochs, gens):
        idx = keeps.gather(1, torch.stack(step.positions))   # [J, B]
        if augments:
            xb = torch.stack([augment(x[i], recipe, g).flatten(1) for i, g in zip(idx, gens)])
        else:
            xb = x[idx].flatten(2)                           # [J, B, features]
        yb = labels.gather(1, idx)
        for group in opt.param_groups:
            group["lr"] = lr_at(step.step, span, recipe)
        with precision.autocast():
            out = _forward(layers, xb)
            # sum over copies of each copy's mean loss: every copy gets its own gradient
            loss = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none",
                                   label_smoothing=recipe.label_smoothing)
            loss = loss.view(len(jobs), -1).mean(1).sum()
        precision_step(loss, opt, scaler)
    return [_unstack(model, layers, k) for k, model in enumerate(models)]


@torch.no_grad()
def _unstack(model: nn.Sequential, layers: list[tuple[torch.Tensor, torch.Tensor]],
             k: int) -> nn.Module:
    linear = [m for m in model if isinstance(m, nn.Linear)]
    for lin, (w, b) in zip(linear, layers):
        lin.weight.copy_(w[k].T)
        lin.bias.copy_(b[k, 0])
    return model.eval()
