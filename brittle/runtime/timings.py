"""Seconds per trained model, remembered across runs, and a run's cost stated before it starts.

A run's cost is the models it trains. `ModelClock` times every model an engine trains (a CUDA
device is synchronised once per call, so the time is the work's, not its launch) and keeps the
mean per engine and device in `cache_dir/timings.json`: an engine is its arch, trainer and data (the
stable key of their config slice), a device its name (`NVIDIA H200`, `cpu`). Before the first
stage the pipeline logs at most how many models the run trains and, when this engine was timed
on this device before, the hours that implies; the first models trained refine it in the log.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from brittle.runtime.stagetimes import count_models

log = logging.getLogger(__name__)

RECORD = "timings.json"


def device_name(device: torch.device) -> str:
    """What a timing is valid for: the GPU's model name, or `cpu`."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return "cpu"


def hours(seconds: float) -> str:
    """A duration as the log states it: '3.2 h', '14 min' or '40 s'."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


class ModelClock:
    """Times one engine's models on one device; `planned` is the run's most models to train."""

    def __init__(self, cache_root: Path, engine_key: str, device: torch.device, planned: int = 0):
        self.path = Path(cache_root) / RECORD
        self.key = f"{engine_key}@{device_name(device)}"
        self.device, self.planned = device, int(planned)
        self.models, self.seconds = 0, 0.0
        self.before = self._read().get(self.key)

    def _read(self) -> dict:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def known(self) -> float | None:
        """Seconds per model measured by an earlier run (None: never timed here)."""
        return None if self.before is None else float(self.before["seconds_per_model"])

    @contextmanager
    def timing(self, n_models: int) -> Iterator[None]:
        """Around one training call of `n_models` models."""
        start = time.perf_counter()
        yield
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        first = self.models == 0
        self.models += int(n_models)
        count_models(n_models)
        self.seconds += time.perf_counter() - start
        if first and self.planned:
            per = self.seconds / self.models
            log.info("first %d model%s: %.2f s each; at most %d models ~ %s on this device",
                     self.models, "s" if self.models > 1 else "", per, self.planned,
                     hours(per * self.planned))

    def save(self) -> None:
        """Merge this run's mean seconds per model into the record (atomically, under a lock)."""
        if not self.models:
            return
        from filelock import FileLock

        from brittle.runtime.files import save_json
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            record = self._read()
            record[self.key] = {"seconds_per_model": self.seconds / self.models,
                                "models": self.models}
            save_json(self.path, record)
