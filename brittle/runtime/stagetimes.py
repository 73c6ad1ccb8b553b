"""What each stage of a run cost in this process: its seconds and the models trained while it ran,
recorded by the stage's own `run` (decorated with `timed_stage`) into the run's `StageTimes`
(`Execution.times`); summary.json holds them as `stage_seconds` and `models_trained`, so readers
(bench/gpu/records.py) never parse a log. A cached stage found in the cache costs its load time
and no models; a stage run twice (a bank for the scorer and one for the LDS) adds up.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_TRAINED = [0]   # models trained in this process so far: every ModelClock adds its models


def count_models(n_models: int) -> None:
    """Called by brittle/runtime/timings.py's ModelClock for every training call."""
    _TRAINED[0] += int(n_models)


@dataclass
class StageTimes:
    """Seconds and models trained by stage name, in the order the stages first ran."""
    seconds: dict[str, float] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)

    def add(self, stage: str, seconds: float, models: int) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + float(seconds)
        self.models[stage] = self.models.get(stage, 0) + int(models)


def timed_stage(name: str) -> Callable[[F], F]:
    """Decorator of a stage's `run`: its seconds and the models trained during it go into the
    StageTimes of the Execution it is handed (none handed: nothing recorded)."""
    def decorate(run: F) -> F:
        @functools.wraps(run)
        def timed(*args: Any, **kwargs: Any) -> Any:
            times = next((a.times for a in (*args, *kwargs.values())
                          if isinstance(getattr(a, "times", None), StageTimes)), None)
            start, before = time.perf_counter(), _TRAINED[0]
            try:
                return run(*args, **kwargs)
            finally:
                if times is not None:
                    times.add(name, time.perf_counter() - start, _TRAINED[0] - before)
        return timed  # type: ignore[return-value]
    return decorate
