"""A user's own training function as the runner of counterfactual tests.

The contract (`brittle.api.find_supports` and docs/your-model.md): brittle calls the function
with a `TrainingJob` (or, with `batched=True`, a list of them) and reads back, per job, either
whether the trained model still classifies the job's target correctly (a bool) or its margin (a
finite float: correct-class logit minus the highest other; > 0 means correct). Training must be
a function of the job alone (its training indices, labels and seed): the same job gives the same
answer, which is what makes a killed search resumable and lockstep equal to one-by-one.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from brittle.counterfactual.tasks import Task
from brittle.counterfactual.tester import Model
from brittle.runtime.errors import BrittleError


@dataclass(frozen=True)
class TrainingJob:
    """One model to train and judge.

    train_indices: int64 [N_keep], increasing: the training images to train on (a removal drops
    its prefix; a relabelling keeps all). labels: int64 [N], the label to train each training
    image with, indexed by training index (a relabelling's prefix carries the flip class). seed:
    the model's seed (initialisation, data order, augmentation): distinct replicates of a test
    get distinct seeds (63-bit; `seed32` for libraries that take 32-bit seeds, such as
    scikit-learn's random_state). target: the test index whose prediction is asked.
    """
    train_indices: np.ndarray
    labels: np.ndarray
    seed: int
    target: int

    @property
    def seed32(self) -> int:
        """The seed folded into [0, 2**32)."""
        return (self.seed ^ (self.seed >> 32)) & 0xFFFFFFFF


TrainFn = Callable[[Any], Any]


@dataclass
class CallableRunner:
    """Runs a user's `train_fn` on the task's modified training sets (`train_labels` int [N]: the
    training set's own labels)."""
    train_fn: TrainFn
    task: Task
    train_labels: np.ndarray
    batched: bool = False

    def verdicts(self, models: Sequence[Model]) -> list[tuple[bool, float]]:
        jobs = [self._job(m) for m in models]
        if self.batched:
            answers = self.train_fn(jobs)
            if not isinstance(answers, Sequence | np.ndarray) or len(answers) != len(jobs):
                got = len(answers) if hasattr(answers, "__len__") else type(answers).__name__
                raise BrittleError(f"train_fn (batched) returned {got} answers for {len(jobs)} "
                                   f"jobs; return one bool or margin per job, in order")
        else:
            answers = [self.train_fn(job) for job in jobs]
        return [_verdict(a, job) for a, job in zip(answers, jobs)]

    def _job(self, model: Model) -> TrainingJob:
        r = model.request
        labels = torch.as_tensor(np.asarray(self.train_labels, dtype=np.int64))
        keep, train_with = self.task.apply(labels, r.modified, r.flip_class)
        return TrainingJob(keep.numpy(), train_with.numpy(), int(model.seed), int(r.target))


def _verdict(answer: Any, job: TrainingJob) -> tuple[bool, float]:
    """(correct, margin) of one answer; a bool's margin is not known (NaN)."""
    if isinstance(answer, bool | np.bool_):
        return bool(answer), math.nan
    if isinstance(answer, int | float | np.integer | np.floating) and math.isfinite(answer):
        return bool(answer > 0), float(answer)
    raise BrittleError(f"train_fn returned {answer!r} for the job of target {job.target} (seed "
                       f"{job.seed}); return a bool (still classified correctly) or a finite "
                       f"float margin (> 0: correct)")
