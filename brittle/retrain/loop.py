"""The one seeded training loop that every trainer shares (recipe, stacked and fast).

A model's seed fixes its initialisation (the global RNG, forked and restored, so dropout is
seeded too without touching the caller's stream), its data order and its augmentation (a
generator of its own). `batches` is the epoch/step loop: one permutation per model per epoch,
a fractional number of epochs allowed, and the step count the learning-rate schedules use.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Within: the global RNG seeded with `seed` (restored on exit); yields the model's generator."""
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


def batches(n: int, batch_size: int, epochs: float, gens: Sequence[torch.Generator]) -> Iterator[Step]:
    """Shuffled batches of n training images for each model's generator, `epochs` times (the last
    epoch cut short when fractional); incomplete batches are dropped."""
    bs = min(int(batch_size), n)
    per_epoch = n // bs
    total = math.ceil(per_epoch * epochs)
    step = 0
    for epoch in range(math.ceil(epochs)):
        perms = [torch.randperm(n, generator=g, device=g.device) for g in gens]
        for b in range(per_epoch):
            if step >= total:
                return
            yield Step(epoch, step, total, [p[b * bs:(b + 1) * bs] for p in perms])
            step += 1
