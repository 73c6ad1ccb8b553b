"""A CPU machine that looks like one with N CUDA GPUs, keeping torch's argument contract.

Each fake `torch.cuda.*` function judges its device argument the way torch's own does, through
torch's own `torch.cuda._utils._get_device_index` with the same `optional` flag: `set_device`
refuses an index-less `torch.device("cuda")` (as the real one does), the query functions
(`synchronize`, `mem_get_info`, `get_device_name`, memory statistics) read it as the current device,
and an index beyond the N GPUs is torch's "invalid device ordinal". A fake that accepts anything
hid a start-up crash on every real GPU once; this one fails where torch fails.

`install(monkeypatch, n)` patches for one test; `install_process(n)` patches a whole process (a
command line run by tests/helpers.run_brittle).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.cuda._utils import _get_device_index

GIB = 1 << 30


class FakeCuda:
    """The state of the fake machine: N GPUs, the current one, and every call made."""

    def __init__(self, n: int):
        self.n, self.current, self.calls = n, 0, []

    def _index(self, device: Any, optional: bool) -> int:
        if device is None and optional:
            return self.current
        index = _get_device_index(device, optional=optional)
        if not 0 <= index < self.n:
            raise RuntimeError(f"CUDA error: invalid device ordinal (device {index}, "
                               f"{self.n} visible)")
        return index

    def set_device(self, device: Any) -> None:
        index = _get_device_index(device)  # torch: optional=False, an index-less cuda is refused
        if index >= 0:
            self.current = self._index(index, optional=False)
        self.calls.append(("set_device", index))

    def query(self, name: str, result: Callable[[int], Any]) -> Callable[..., Any]:
        def call(device: Any = None) -> Any:
            index = self._index(device, optional=True)
            self.calls.append((name, index))
            return result(index)
        return call

    def patches(self) -> dict[str, Any]:
        """torch.cuda attribute -> fake."""
        return {
            "is_available": lambda: True,
            "device_count": lambda: self.n,
            "current_device": lambda: self.current,
            "is_initialized": lambda: False,
            "set_device": self.set_device,
            "synchronize": self.query("synchronize", lambda i: None),
            "mem_get_info": self.query("mem_get_info", lambda i: (40 * GIB, 80 * GIB)),
            "get_device_name": self.query("get_device_name", lambda i: f"Fake GPU {i}"),
            "reset_peak_memory_stats": self.query("reset_peak_memory_stats", lambda i: None),
            "max_memory_allocated": self.query("max_memory_allocated", lambda i: 0),
        }


def install(monkeypatch: Any, n: int) -> FakeCuda:
    """Patch torch.cuda for one test (undone by pytest's monkeypatch)."""
    fake = FakeCuda(n)
    for name, value in fake.patches().items():
        monkeypatch.setattr(torch.cuda, name, value)
    return fake


def install_process(n: int) -> FakeCuda:
    """Patch torch.cuda for the rest of this process."""
    fake = FakeCuda(n)
    for name, value in fake.patches().items():
        setattr(torch.cuda, name, value)
    return fake


def stop_at_first_stage(fake: FakeCuda) -> None:
    """Replace the pipeline's first stage by a report of what reached it (the device the stage is
    handed, the current device, the fake's calls so far) on stdout, then end the process with
    status 0: everything a command line does before its first stage ran for real."""
    import os
    import sys

    from brittle.stages import data

    def reached(spec: Any, ex: Any) -> None:
        print(f"first stage: device={ex.device} current={torch.cuda.current_device()} "
              f"calls={fake.calls}",
              flush=True)
        sys.stderr.flush()
        os._exit(0)

    data.run = reached  # type: ignore[assignment]


def two_gpus_to_first_stage() -> None:
    """run_brittle's `setup`: a two-GPU machine whose run stops at its first stage."""
    stop_at_first_stage(install_process(2))
