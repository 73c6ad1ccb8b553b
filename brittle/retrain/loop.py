"""The one seeded training loop that every trainer shares (recipe, stacked and fast).

A model's seed fixes its initialisation (the global RNG, forked and restored, so dropout is
seeded too without touching the caller's stream), its data order and its augmentation (a
generator of its own). `batches` is the epoch/step loop: one permutation per model per epoch,
a fractional number of epochs allowed, and the step count the learning-rate schedules use.

A trainer writes one model's training as a `Fit`: a generator that prepares each step's batch
and yields it as a `Pending` step, and applies its optimiser when resumed. `run` drives one fit
alone; brittle/retrain/together.py drives several at once (CUDA streams, or one vmapped network),
each model with its own data, augmentation and optimiser exactly as when alone.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Within: the global RNG seeded with `seed` (restored on exit); yields the model's
    generator."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield torch.Generator(device=device).manual_seed(seed)


def build_seeded(build: Callable[[], nn.Module], seed: int, device: torch.device) -> nn.Module:
    """A freshly initialised model whose weights depend on `seed` alone."""
    with seeded(seed, device):
        return build().to(device)


@dataclass(frozen=True)
class Step:
    """One optimisation step: epoch, step number, total steps, and per model the positions
    (into `keep`) of its batch, int64 [B] each."""
    epoch: int
    step: int
    total: int
    positions: list[torch.Tensor]


def step_count(n: int, batch_size: int, epochs: float) -> tuple[int, int]:
    """(batch size, number of steps) of training on n images: batches of min(batch_size, n),
    the incomplete one dropped, `epochs` times (fractional: the last epoch cut short)."""
    bs = min(int(batch_size), n)
    return bs, math.ceil((n // bs) * epochs)


def batches(n: int, batch_size: int, epochs: float,
            gens: Sequence[torch.Generator]) -> Iterator[Step]:
    """Shuffled batches of n training images for each model's generator, `epochs` times (the last
    epoch cut short when fractional); incomplete batches are dropped."""
    bs, total = step_count(n, batch_size, epochs)
    per_epoch = n // bs
    step = 0
    for epoch in range(math.ceil(epochs)):
        perms = [torch.randperm(n, generator=g, device=g.device) for g in gens]
        for b in range(per_epoch):
            if step >= total:
                return
            yield Step(epoch, step, total, [p[b * bs:(b + 1) * bs] for p in perms])
            step += 1


@dataclass(frozen=True)
class Pending:
    """One model's next step, waiting for its forward and backward pass: the batch x [B, ...],
    its labels y int64 [B], the loss of the logits [B, classes] against y (a scalar), and the
    gradient scaler's `scale` of that loss (fp16; the identity otherwise). Gradients are zeroed
    before it is yielded; the optimiser steps when the fit is resumed."""
    x: torch.Tensor
    y: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scale: Callable[[torch.Tensor], torch.Tensor]


Fit = Generator[Pending, None, None]
Autocast = Callable[[], contextlib.AbstractContextManager]


def run(model: nn.Module, fit: Fit, autocast: Autocast) -> None:
    """Drive one model's fit to its end: forward and loss under `autocast`, then backward."""
    for pending in fit:
        with autocast():
            loss = pending.loss(model(pending.x), pending.y)
        pending.scale(loss).backward()
