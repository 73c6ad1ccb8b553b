"""Resumable pretraining: the whole training state saved every N epochs, so a fit killed by a
scheduler (Slurm's time limit, a preemption) continues where it was instead of starting over.

The state is Lightning's own checkpoint (weights, momentum encoders and memory banks, optimiser,
schedule, loop counters) plus what Lightning does not keep: the random generators that draw the
views and batch order, and the epoch curves. A resumed fit is therefore the same fit as an
uninterrupted one (tests/ssl/test_backbones.py checks the weights are equal on a CPU).
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

log = logging.getLogger(__name__)

LAST = "last.ckpt"


def rng_state() -> dict[str, Any]:
    """Every random generator a training step draws from, as tensors and plain ints (a checkpoint
    of tensors and builtins loads with torch's `weights_only=True`)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                                       int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def transient_buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Buffers left out of the state dict (`persistent=False`): lightly's memory banks (MoCo's
    negatives from earlier batches and their write position) are such, and a resumed MoCo needs
    them as they were."""
    kept = module.state_dict()
    return {name: buf.detach().clone() for name, buf in module.named_buffers() if name not in kept}


class EpochCheckpoint(Checkpoint):
    """Writes `directory/last.ckpt` (atomically) after every `every`-th epoch but the last.

    A `Checkpoint` subclass on purpose: Lightning calls checkpoint callbacks after the module's own
    `on_train_epoch_end`, so the saved curves include the epoch just finished."""

    def __init__(self, directory: Path, every: int):
        self.directory, self.every = Path(directory), int(every)
        self.module: Any = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.module = pl_module

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(), "losses": list(self.module.epoch_losses),
                "knn": list(self.module.knn_accuracies), "buffers": transient_buffers(self.module)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_state(state_dict["rng"])
        for name, value in state_dict["buffers"].items():
            owner, _, leaf = name.rpartition(".")
            module = self.module.get_submodule(owner) if owner else self.module
            module._buffers[leaf] = value.to(self.module.device)
        self.module.epoch_losses = list(state_dict["losses"])
        self.module.knn_accuracies = list(state_dict["knn"])
        log.info("pretraining resumes after epoch %d of %d", len(self.module.epoch_losses),
                 self.module.max_epochs)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = len(self.module.epoch_losses)
        if self.every <= 0 or done % self.every or done >= int(trainer.max_epochs or 0):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{LAST}.{os.getpid()}"
        try:
            # the whole state (optimizer, loops, callbacks): a resume needs it; said explicitly,
            # Lightning logs no default
            trainer.save_checkpoint(tmp, weights_only=False)
            os.replace(tmp, self.directory / LAST)
        finally:  # a failed save (a full disk) leaves the previous state, and no partial file
            tmp.unlink(missing_ok=True)


def resume_from(directory: Path | None) -> str | None:
    """The checkpoint a fit resumes from, if an earlier fit of the same config left one."""
    if directory is None:
        return None
    last = Path(directory) / LAST
    return str(last) if last.is_file() else None
