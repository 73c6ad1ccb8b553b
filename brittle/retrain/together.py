"""Training several models at once, each as it trains alone: `trainer.together` of the recipe
and fast trainers.

A trainer that writes one model's training as a `Fit` (brittle/retrain/loop.py) gets three ways
to train many models (the n_test models of a test, or a lockstep round's jobs of many tests):

- `loop`: one model after another;
- `streams`: the models' steps interleaved, each model on a CUDA stream of its own, so one
  model's kernels run while another's are launched; on a CPU the same interleaving without
  streams, which is the arithmetic of one at a time, bit for bit;
- `vmap`: one forward and backward pass for all of them, their parameters stacked
  (brittle/retrain/vmapped.py): one launch per layer whatever the number of models.

Every model keeps its own seed stream: its initialisation (built under its seed), data order,
augmentation (its own generator) and optimiser, so its weights do not depend on which models
train beside it. Concurrent models are grouped by training-set size (equal step counts), at most
`concurrent` to a group. Archs with dropout train one by one: concurrent models would share
the global random stream that, alone, follows the model's seed.
"""
from __future__ import annotations

import contextlib
import itertools
import weakref
from abc import abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import nn

from brittle.retrain.loop import Autocast, Fit, build_seeded, run, seeded
from brittle.retrain.trainer import Job, Trainer
from brittle.retrain.vmapped import run_vmapped
from brittle.runtime.errors import BrittleError

CONCURRENT = ("streams", "vmap")


def random_free(model: nn.Module) -> bool:
    """Whether the model's training forward draws nothing at random (no dropout, no drop-path)."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return False
        if float(getattr(m, "drop_prob", 0.0) or 0.0) > 0:   # timm's DropPath
            return False
    return True


def groups(jobs: Sequence[Job], size: int) -> list[list[int]]:
    """Indices of `jobs` in groups of equal training-set size, at most `size` each, in order."""
    by_size: dict[int, list[int]] = {}
    for i, job in enumerate(jobs):
        by_size.setdefault(int(job.keep.shape[0]), []).append(i)
    return [members[lo:lo + size] for members in by_size.values()
            for lo in range(0, len(members), size)]


class StepTrainer(Trainer):
    """A trainer whose one-model training is a `Fit`: trains models one by one, or several at
    once (`together`: streams | vmap), `concurrent` at most to a group."""

    together: str = "loop"
    concurrent: int = 8
    _facts: weakref.WeakKeyDictionary

    def _set_together(self, together: str, concurrent: int, valid: Sequence[str]) -> None:
        if together not in valid:
            raise BrittleError(f"trainer.together={together} is not valid; "
                               f"use one of {list(valid)}")
        if int(concurrent) < 1:
            raise BrittleError(f"trainer.concurrent={concurrent} is not valid; "
                               f"give a positive count")
        self.together, self.concurrent = together, int(concurrent)
        self._facts = weakref.WeakKeyDictionary()

    @abstractmethod
    def fit(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor,
            gen: torch.Generator) -> Fit:
        """One model's training on x[keep] (x float [N, C, H, W], labels int64 [N]) as a Fit."""

    @abstractmethod
    def autocast(self, device: torch.device) -> Autocast:
        """The forward pass's autocast context (a factory) on `device`."""

    def arch_fact(self, build: Callable[[], nn.Module], name: str,
                  test: Callable[[nn.Module], bool]) -> bool:
        """test(a model of build's arch), decided once per builder and name."""
        facts = self._facts.setdefault(build, {})
        if name not in facts:
            with torch.random.fork_rng():   # building draws from the global RNG
                facts[name] = test(build())
        return facts[name]

    def train_one(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
                  keep: torch.Tensor, seed: int) -> nn.Module:
        """One model alone; deterministic per seed on a CPU (brittle/retrain/loop.py)."""
        with seeded(seed, x.device) as gen:
            model = build().to(x.device)
            run(model, self.fit(model, x, labels, keep, gen), self.autocast(x.device))
        return model.eval()

    def train(self, build: Callable[[], nn.Module], x: torch.Tensor, labels: torch.Tensor,
              keep: torch.Tensor, seeds: Sequence[int]) -> list[nn.Module]:
        """One model per seed on x[keep]: together in a concurrent mode, else one by one."""
        if self.together not in CONCURRENT or len(seeds) < 2:
            return [self.train_one(build, x, labels, keep, seed) for seed in seeds]
        return self.train_jobs(build, x, [Job(keep, labels, seed) for seed in seeds])

    def train_jobs(self, build: Callable[[], nn.Module], x: torch.Tensor,
                   jobs: Sequence[Job]) -> list[nn.Module]:
        """One model per job, in order; in a concurrent mode, groups of equal training-set size
        train together (a group of one alone)."""
        if self.together not in CONCURRENT:
            return super().train_jobs(build, x, jobs)
        if not self.arch_fact(build, "random_free", random_free):
            raise BrittleError(f"trainer.together={self.together} needs an arch without dropout or "
                               f"drop-path; use trainer.together=loop")
        placed: dict[int, nn.Module] = {}
        for part in groups(jobs, self.concurrent):
            batch = [jobs[i] for i in part]
            if len(batch) == 1:
                trained = [self.train_one(build, x, batch[0].labels, batch[0].keep, batch[0].seed)]
            else:
                trained = self._together(build, x, batch)
            placed.update(zip(part, trained))
        return [placed[i] for i in range(len(jobs))]

    def _together(self, build: Callable[[], nn.Module], x: torch.Tensor,
                  jobs: Sequence[Job]) -> list[nn.Module]:
        device = x.device
        models = [build_seeded(build, job.seed, device) for job in jobs]
        gens = [torch.Generator(device=device).manual_seed(job.seed) for job in jobs]
        fits = [self.fit(model, x, job.labels, job.keep, gen)
                for model, job, gen in zip(models, jobs, gens)]
        if self.together == "vmap":
            run_vmapped(models, fits, self.autocast(device), channels_last=device.type == "cuda")
        else:
            run_streams(models, fits, self.autocast(device), device)
        return [model.eval() for model in models]


def run_streams(models: Sequence[nn.Module], fits: Sequence[Fit], autocast: Autocast,
                device: torch.device) -> None:
    """Drive the fits step by step in turn, each model's work (set-up, steps, optimiser) on a
    CUDA stream of its own; the caller's stream then waits for all of them."""
    if device.type != "cuda":
        _interleave(models, fits, [None] * len(models), autocast)
        return
    main = torch.cuda.current_stream(device)
    streams = [torch.cuda.Stream(device) for _ in models]
    for stream in streams:
        stream.wait_stream(main)   # the data, keeps and labels were made on the caller's stream
    _interleave(models, fits, streams, autocast)
    for stream in streams:
        main.wait_stream(stream)
    for model in models:   # made on a side stream, read on the caller's from now on
        for t in itertools.chain(model.parameters(), model.buffers()):
            t.record_stream(main)


def _interleave(models: Sequence[nn.Module], fits: Sequence[Fit],
                streams: Sequence[torch.cuda.Stream | None], autocast: Autocast) -> None:
    """One step of each unfinished fit in turn, each under its stream, until all have ended."""
    live = list(zip(models, fits, streams))
    while live:
        still = []
        for model, fit, stream in live:
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                pending = next(fit, None)
                if pending is None:
                    continue
                with autocast():
                    loss = pending.loss(model(pending.x), pending.y)
                pending.scale(loss).backward()
            still.append((model, fit, stream))
        live = still
