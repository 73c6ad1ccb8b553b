"""A run's training budget: at most how many models it trains, by purpose, stated before it starts.

The search's share is targets x (the most tests a target can take) x models per test (for the
paper's bisection: targets x (1 + budget) x n_test); the other models are the reference models,
a model-based scorer's models and the LDS bank, each counted only when its cache does not hold
it yet. With seconds per model measured on this device before (brittle/runtime/timings.py) the
plan also states the time that implies.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from brittle.runtime.timings import hours


def shard_size(n_targets: int, shard: int, num_shards: int) -> int:
    """How many of n targets one shard searches (targets[shard::num_shards])."""
    return len(range(int(shard), int(n_targets), max(1, int(num_shards))))


@dataclass
class TrainingPlan:
    """Models to train by purpose; `per_model` seconds per model by purpose when known."""
    parts: dict[str, int] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    per_model: dict[str, float] = field(default_factory=dict)

    def add(self, purpose: str, n_models: int, detail: str = "",
            seconds_per_model: float | None = None) -> None:
        self.parts[purpose] = int(n_models)
        if detail:
            self.details[purpose] = detail
        if seconds_per_model is not None:
            self.per_model[purpose] = float(seconds_per_model)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def seconds(self) -> float | None:
        """The time the plan implies, when every purpose with models to train was timed before."""
        if any(n and p not in self.per_model for p, n in self.parts.items()):
            return None
        return sum(n * self.per_model.get(p, 0.0) for p, n in self.parts.items())

    def describe(self) -> str:
        """One log line: 'at most 415 models to train (search 10 targets x 8 tests x 5 = 400,
        reference 3, ...); ~ 12 min at the seconds per model measured on this device before'."""
        shown = [f"{p} {self.details[p]} = {n}" if p in self.details else f"{p} {n}"
                 for p, n in self.parts.items() if n]
        text = f"at most {self.total} models to train" + (f" ({', '.join(shown)})" if shown else "")
        seconds = self.seconds()
        if seconds is not None and self.total:
            return (text + f"; ~ {hours(seconds)} at the seconds per model measured on this "
                           "device before")
        return (text + "; the time shows once the first models are trained (never timed on "
                       "this device)")
