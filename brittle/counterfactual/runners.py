"""Runners: who trains a counterfactual test's models and judges them on their targets.

`EngineRunner` is brittle's own: the task modifies the training set (indices kept, labels to
train with; brittle/counterfactual/tasks.py), the retraining engine trains the models, models of
one test together and a round's models of many tests together where its trainer can
(brittle/retrain/), and each model's logits on its target give (classified correctly, margin),
all of a round in one transfer to the host. A user's own training function is the other runner
(brittle/counterfactual/supports.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from brittle.counterfactual.tasks import Task
from brittle.counterfactual.tester import Model, Request
from brittle.retrain.engine import Engine
from brittle.retrain.trainer import Job, margin


@dataclass
class EngineRunner:
    """Trains with brittle's engine (its arch, trainer and device-resident data)."""
    engine: Engine
    task: Task
    # the previous call's modified training sets by request (the request kept, so its id is not
    # reused): a test's later rounds of models reuse its set
    _built: dict[int, tuple[Request, torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def verdicts(self, models: Sequence[Model]) -> list[tuple[bool, float]]:
        """(classified correctly, margin) per model. A test's modified training set is built
        once, however many rounds its models take, and shared by its models (the trainer groups
        models by that identity)."""
        before, self._built = self._built, {}
        jobs = []
        for m in models:
            key = id(m.request)
            if key not in self._built:
                self._built[key] = (before[key] if key in before else
                                    (m.request, *self._modified(m.request)))
            _, keep, labels = self._built[key]
            jobs.append(Job(keep, labels, m.seed))
        trained = self.engine.train_jobs(jobs)
        return verdicts_of(self.engine, trained, [int(m.request.target) for m in models])

    def _modified(self, request: Request) -> tuple[torch.Tensor, torch.Tensor]:
        return self.task.apply(self.engine.train_y, request.modified, request.flip_class)


def verdicts_of(engine: Engine, models: Sequence[nn.Module], targets: Sequence[int]
                ) -> list[tuple[bool, float]]:
    """(classified correctly, margin) of each model on its test image `targets[i]`: the logits
    of all of them [len(models), C] go to the host in one transfer (`Engine.evaluate`'s numbers)."""
    with torch.no_grad():
        out = torch.stack([engine.logits(m, engine.test_x[t:t + 1])[0]
                           for m, t in zip(models, targets)]).cpu()
    labels = [int(engine.test_y[t]) for t in targets]
    return [(bool(int(o.argmax()) == y), margin(o, y)) for o, y in zip(out, labels)]
