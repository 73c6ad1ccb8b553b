"""How brittle runs Lightning for pretraining: the accelerator and devices of a torch device,
Lightning's own log lines kept out of the run's log, and the determinism flags Lightning sets for
the whole process restored after the fit."""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch


def lightning_device(device: torch.device) -> dict[str, Any]:
    """Lightning's accelerator and devices for a torch device: cuda:N is GPU N, not GPU 0."""
    if device.type == "cuda":
        return {"accelerator": "gpu", "devices": [device.index if device.index is not None else 0]}
    return {"accelerator": "cpu", "devices": 1}


# Lightning's INFO lines (accelerator summary, an advertisement for its cloud logger, "fit stopped")
# and a deprecation torch raises inside Lightning's own code are not the user's business
_LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero",
                      "lightning_fabric.utilities.rank_zero")
_LIGHTNING_DEPRECATION = r".*isinstance\(treespec, LeafSpec\)` is deprecated"


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """A pretraining log of brittle's lines and real warnings only, restored afterwards."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LIGHTNING_DEPRECATION)
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


@contextlib.contextmanager
def restored_determinism() -> Iterator[None]:
    """Lightning's `deterministic=True` switches deterministic algorithms on for the whole process
    (and cuDNN's benchmark off) and leaves them so; the retraining after pretraining would then
    fail on CUDA ops without a deterministic kernel. Restore what was set before the fit."""
    flags = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = flags[2], flags[3]
        if flags[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = flags[4]
