"""Memory budgets for work that is cut into chunks: how many bytes a chunk may use on a device.

A setting of 0 means "half of what is free now" (the rest is for the allocator's fragmentation,
the models and the arrays around the chunk); a positive setting is taken as the budget in bytes,
which is how tests and users bound it explicitly. Chunks are sized from the budget, so the same
code fits a laptop, a 24 GB CPU machine and a 141 GB H200.
"""
from __future__ import annotations

import os

import torch


def free_bytes(device: torch.device) -> int:
    """Bytes free on `device` now: the CUDA allocator's view for a GPU, MemAvailable for the
    host."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def budget(device: torch.device, setting: int) -> int:
    """The bytes a chunked computation may use: `setting` when positive, else half the free
    memory."""
    return int(setting) if int(setting) > 0 else free_bytes(device) // 2


def rows_within(budget_bytes: int, bytes_per_row: int, cap: int) -> int:
    """How many rows of `bytes_per_row` fit in the budget: at least 1, at most `cap`."""
    return max(1, min(int(cap), int(budget_bytes) // max(1, int(bytes_per_row))))


def is_out_of_memory(exc: BaseException) -> bool:
    """A failed allocation (CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return (isinstance(exc, RuntimeError)
            and ("out of memory" in text or "not enough memory" in text))
