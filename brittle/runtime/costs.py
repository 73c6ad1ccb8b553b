"""Cost accounting of a stage: wall time and peak extra memory (resident set, and CUDA)."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: fall back to the peak, which only grows
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Meter:
    """`with Meter() as m: ...` -> m.seconds, m.peak_bytes (RSS above the start, sampled every
    `interval` s), m.cuda_peak_bytes."""
    interval: float = 0.01
    seconds: float = 0.0
    peak_bytes: int = 0
    cuda_peak_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self, base: int) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, _rss() - base)

    def __enter__(self) -> Meter:
        self._base = _rss()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, args=(self._base,), daemon=True)
        self._thread.start()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, _rss() - self._base, 0)
        if torch.cuda.is_available():
            self.cuda_peak_bytes = int(torch.cuda.max_memory_allocated())
