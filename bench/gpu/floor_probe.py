"""Throughput probes for the GPU check (bench/gpu_check.py): how close retraining runs to its floor.

- `step_floor`: images/s of bare training steps of an arch at a batch size (autocast in the
  device's precision, bf16 on CUDA; channels-last on CUDA; eager; SGD; random images and labels):
  what a recipe's steps cost with no data loading, augmentation or schedule;
- `floor_report`: a trainer's seconds per model against that floor at the recipe's batch size
  (seconds per model / (images a model's training steps see / floor images/s));
- `compare_together`: models per second of `trainer.together` modes on the same jobs (the same
  seeds and data), with each mode's test predictions compared to the first mode's.

Every figure is timed after an untimed warm-up of the same shapes (cuDNN autotuning, the caching
allocator) and synchronised on CUDA.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from brittle.retrain.engine import Engine
from brittle.retrain.loop import step_count
from brittle.retrain.together import CONCURRENT, StepTrainer
from brittle.retrain.trainer import Job
from brittle.runtime.precision import Precision


@contextlib.contextmanager
def _autotuned(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning on, as a run has it (brittle/runtime/execution.py: activate)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_floor(build: Callable[[], nn.Module], in_shape: Sequence[int], num_classes: int,
               batch_size: int, device: torch.device, steps: int = 20, warmup: int = 5,
               precision: str = "auto") -> float:
    """Images/s of `steps` training steps (forward, loss, backward, SGD step) of build's arch
    on one random batch [batch_size, *in_shape], after `warmup` untimed steps."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.manual_seed(0)
        model = build().to(device).train()
        x = torch.randn(batch_size, *in_shape, device=device)
        y = torch.randint(0, num_classes, (batch_size,), device=device)
    if cuda and x.dim() == 4:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, fused=cuda or None)
    policy = Precision.of(precision, device)

    def step() -> None:
        with policy.autocast():
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with _autotuned(device):
        for _ in range(warmup):
            step()
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
    return steps * batch_size / (time.perf_counter() - start)


def _batch_epochs(trainer: Any) -> tuple[int, float]:
    recipe = getattr(trainer, "recipe", trainer)   # RecipeTrainer's recipe, or FastTrainer itself
    return int(recipe.batch_size), float(recipe.epochs)


def _timed(engine: Engine, jobs: Sequence[Job]) -> tuple[float, list[nn.Module]]:
    device = engine.train_x.device
    with _autotuned(device):
        _sync(device)
        start = time.perf_counter()
        models = engine.train_jobs(jobs)
        _sync(device)
    return time.perf_counter() - start, models


def _warm_jobs(engine: Engine, n_models: int, seed: int) -> list[Job]:
    """Jobs with the timed jobs' shapes but two batches an epoch: a cheap warm-up."""
    batch, _ = _batch_epochs(engine.trainer)
    keep = engine.full_keep()[:2 * batch]
    return [Job(keep, engine.train_y, seed + i) for i in range(n_models)]


def floor_report(engine: Engine, seeds: Sequence[int], steps: int = 20) -> dict:
    """A trainer's seconds per model (trained alone on the whole training set, one per seed)
    against the step floor of its arch at its batch size."""
    batch, epochs = _batch_epochs(engine.trainer)
    n = int(engine.train_x.shape[0])
    bs, total = step_count(n, batch, epochs)
    floor = step_floor(engine.build, list(engine.train_x.shape[1:]), int(engine.train_y.max()) + 1,
                       bs, engine.train_x.device, steps=steps)
    _timed(engine, _warm_jobs(engine, 1, 10_000))
    seconds = [_timed(engine, [Job(engine.full_keep(), engine.train_y, seed)])[0] for seed in seeds]
    floor_seconds, mean = total * bs / floor, float(np.mean(seconds))
    return {"batch_size": bs, "floor_images_per_second": floor, "images_per_model": total * bs,
            "floor_seconds": floor_seconds, "seconds": seconds, "seconds_per_model": mean,
            "ratio": mean / floor_seconds}


def with_together(trainer: StepTrainer, together: str, concurrent: int) -> StepTrainer:
    """A copy of `trainer` that trains its models `together` (loop | streams | vmap)."""
    out = copy.copy(trainer)
    out._set_together(together, concurrent, ("loop", *CONCURRENT))
    return out


def compare_together(engine: Engine, modes: Sequence[str] = ("loop", "streams", "vmap"),
                     n_models: int = 8, concurrent: int = 8, seed: int = 0) -> dict:
    """Per mode: seconds and models/s of training `n_models` models (seeds seed..) on the whole
    training set, the speed-up over the first mode, and the fraction of test predictions equal
    to the first mode's model of the same seed (1.0: the same decisions)."""
    jobs = [Job(engine.full_keep(), engine.train_y, seed + i) for i in range(n_models)]
    out: dict = {}
    first: list[torch.Tensor] = []
    for mode in modes:
        moded = dataclasses.replace(engine, trainer=with_together(engine.trainer, mode, concurrent))
        _timed(moded, _warm_jobs(moded, n_models, 10_000))
        seconds, models = _timed(moded, jobs)
        preds = [moded.logits(m, moded.test_x).argmax(1) for m in models]
        first = first or preds
        agree = [float((a == b).float().mean()) for a, b in zip(preds, first)]
        out[mode] = {"seconds": seconds, "models_per_second": n_models / seconds,
                     "speedup": out[modes[0]]["seconds"] / seconds if out else 1.0,
                     "test_agreement_min": min(agree)}
    return out
