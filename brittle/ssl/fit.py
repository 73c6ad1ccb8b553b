"""Self-supervised (or supervised) training of a backbone with Lightning: views, loop, monitor.

`fit_backbone` trains a feature network with one of brittle.ssl.methods' LightningModules on the
*training* images only (labels only for `Supervised` and the kNN monitor) and returns its loss
and kNN curves. The pretrain stage (brittle/stages/pretrain.py) caches what it produces.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from brittle.data.datasets import ImageSet, balanced_subset, normalized
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import plain
from brittle.runtime.precision import lightning_precision
from brittle.ssl.lightning import lightning_device, quiet_lightning, restored_determinism
from brittle.ssl.networks import batch_multiple
from brittle.ssl.resume import EpochCheckpoint, resume_from
from brittle.ssl.speed import compile_mode, uncompile
from brittle.ssl.tracked import pretrain_logger
from brittle.ssl.views import DeviceViews, view_specs

log = logging.getLogger(__name__)


class Pixels(torch.utils.data.Dataset):
    """uint8 images [N, C, H, W] -> whole batches (uint8 [B, C, H, W], labels [B]) indexed at once,
    for augmentation on the device; labels are -1 unless the method trains with labels."""

    def __init__(self, images: Any, labels: np.ndarray | None = None):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(np.asarray(index))   # sorted reads: memory-mapped and lazy images stream
        images = torch.from_numpy(np.ascontiguousarray(np.asarray(self.images[idx])))
        labels = (torch.as_tensor(self.labels[idx]) if self.labels is not None
                  else torch.full((len(idx),), -1))
        return images, labels


class Views(torch.utils.data.Dataset):
    """uint8 images [N, C, H, W] -> (list of augmented views from a lightly transform, label);
    the label is -1 unless the method trains with labels."""

    def __init__(self, images: np.ndarray, transform: Any, labels: np.ndarray | None = None):
        self.images, self.transform, self.labels = images, transform, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], int]:
        img = np.asarray(self.images[i])
        pil = (Image.fromarray(img[0]) if img.shape[0] == 1
               else Image.fromarray(img.transpose(1, 2, 0)))
        views = self.transform(pil)
        return list(views), int(self.labels[i]) if self.labels is not None else -1


@dataclass(frozen=True)
class Fit:
    """A trained backbone and its curves (one entry per epoch; kNN None where not measured);
    epoch_seconds: wall time of each epoch this process trained (EpochTimes)."""
    net: nn.Module
    losses: list[float]
    knn: list[float | None]
    seconds: float
    epoch_seconds: list[float] = field(default_factory=list)
    # the method's projection head (backbone.features=projection embeds with it), if it has one
    head: nn.Module | None = None


class EpochTimes(pl.Callback):
    """Wall seconds of each training epoch, start to end, before the module's epoch-end work (the
    kNN monitor): the run's own record of its speed (bench/pretrain.py reads it)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if module.device.type == "cuda":   # the epoch's queued work, not its launch
            torch.cuda.synchronize(module.device)
        self.seconds.append(time.perf_counter() - self._start)


def fit_backbone(bcfg: DictConfig, transform_cfg: DictConfig, normalize: DictConfig,
                 train: ImageSet, seed: int, device: torch.device, progress: bool,
                 resume: Path | None = None, save_every: int = 0, tracker: Any = None) -> Fit:
    """Train `bcfg.net` with `bcfg.method` on views from `transform_cfg` for `bcfg.epochs`, on
    `device` (cuda:N trains on GPU N, as the rest of the run does). With `resume`, the training
    state is saved there every `save_every` epochs and a fit finds and continues it
    (brittle/ssl/resume.py). A run's `tracker` gets the epoch curves (brittle/ssl/tracked.py);
    it changes no number of the fit."""
    pl.seed_everything(seed, workers=True, verbose=False)
    net = instantiate(bcfg.net)
    _check_batch(net, int(bcfg.batch_size), len(train))
    extra = {"num_classes": len(train.classes)} if "num_classes" in bcfg.method and \
        bcfg.method.num_classes is None else {}  # e.g. an image folder: classes come from disk
    model = instantiate(bcfg.method, backbone=net, max_epochs=int(bcfg.epochs),
                        batch_size=int(bcfg.batch_size), **extra)
    _set_memory_format(model, str(bcfg.memory_format))
    # the monitor sees images as the embedding stage will: in the backbone's normalisation
    _attach_monitor(model, train, bcfg.get("normalize") or normalize, int(bcfg.knn_every))
    labels = train.labels if model.uses_labels else None
    loader = _loader(bcfg, transform_cfg, model, train, labels)
    mode = compile_mode(bcfg.compile)
    if mode is not None:
        model.compile_for_training(mode)
    epochs = EpochTimes()
    saves = [EpochCheckpoint(resume, save_every)] if resume is not None else []
    start = time.perf_counter()
    # Lightning sets the flags when the Trainer is built
    with restored_determinism(), quiet_lightning():
        trainer = pl.Trainer(max_epochs=int(bcfg.epochs), **lightning_device(device),
                             precision=lightning_precision(str(bcfg.precision), device),
                             logger=pretrain_logger(tracker, model), log_every_n_steps=1,
                             enable_checkpointing=resume is not None, enable_model_summary=False,
                             enable_progress_bar=progress, deterministic=device.type == "cpu",
                             # static shapes: cuDNN picks its fastest kernels once
                             benchmark=True if device.type == "cuda" else None,
                             callbacks=[epochs, *saves])
        trainer.fit(model, loader, ckpt_path=resume_from(resume), weights_only=True)
    seconds = time.perf_counter() - start
    uncompile(model)
    if trainer.interrupted or trainer.current_epoch < int(bcfg.epochs):
        # never cache a backbone whose training was cut short (e.g. a scheduler's SIGTERM)
        raise RuntimeError(f"pretraining stopped at epoch {trainer.current_epoch} "
                           f"of {int(bcfg.epochs)}")
    log.info("pretrained %s for %d epochs in %.1f s (final loss %.4f)", type(model).__name__,
             int(bcfg.epochs), seconds,
             model.epoch_losses[-1] if model.epoch_losses else float("nan"))
    return Fit(net, list(model.epoch_losses), list(model.knn_accuracies), seconds, epochs.seconds,
               head=getattr(model, "projection_head", None))


def _check_batch(net: Any, batch: int, n_train: int) -> None:
    """Split batch norm needs every training batch to be a multiple of its splits."""
    multiple = batch_multiple(net)
    if min(batch, n_train) % multiple:
        raise BrittleError(f"backbone.batch_size={batch} ({min(batch, n_train)} images a "
                           f"batch here) is not a multiple of backbone.net.num_splits={multiple} "
                           f"(split batch norm); use a multiple of {multiple}, or "
                           "backbone.net.num_splits=0")


def _loader(bcfg: DictConfig, transform_cfg: DictConfig, model: Any, train: ImageSet,
            labels: np.ndarray | None) -> DataLoader:
    """Batches of uint8 images that `model.views` augments on the device (`augment_on: device`),
    or lightly's per-image views made by DataLoader workers (`augment_on: dataloader`)."""
    workers, batch = int(bcfg.num_workers), int(bcfg.batch_size)
    common: dict[str, Any] = {"num_workers": workers, "persistent_workers": workers > 0}
    where = str(bcfg.augment_on)
    if where == "device":
        model.views = DeviceViews(view_specs(plain(transform_cfg)),
                                  int(train.images.shape[1]))
        sampler = BatchSampler(RandomSampler(range(len(train))), batch,
                               drop_last=len(train) > batch)
        return DataLoader(Pixels(train.images, labels), batch_size=None, sampler=sampler, **common)
    if where != "dataloader":
        raise BrittleError(f"backbone.augment_on={where} is not valid; use device or dataloader")
    return DataLoader(Views(train.images, instantiate(transform_cfg), labels), batch_size=batch,
                      shuffle=True, drop_last=len(train) > batch, **common)


_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def _set_memory_format(model: Any, name: str) -> None:
    """Weights and views in one layout: channels-last speeds up the convolutions and max poolings
    on a CPU (bench/pretrain.py measures by how much) and is the tensor-core layout on a GPU; the
    numbers differ from contiguous only by floating-point rounding (split batch norm included:
    brittle/ssl/networks.py keeps the layout)."""
    if name not in _FORMATS:
        raise BrittleError(f"backbone.memory_format={name} is not valid; use "
                           f"{' or '.join(_FORMATS)}")
    model.to(memory_format=_FORMATS[name])
    model.memory_format = _FORMATS[name]


def _attach_monitor(model: Any, train: ImageSet, normalize: DictConfig, every: int) -> None:
    """kNN monitor: 10% of the training images (balanced, fixed) as queries against the rest.
    Labels serve only this measurement, never the self-supervised training."""
    if every <= 0 or len(train) < 50:
        return
    held = balanced_subset(train.labels, max(len(np.unique(train.labels)), len(train) // 10), 0,
                           "monitor")
    bank = np.setdiff1d(np.arange(len(train)), held)
    mean, std = list(normalize.mean), list(normalize.std)
    model.set_monitor(normalized(np.asarray(train.images[bank]), mean, std),
                      torch.as_tensor(train.labels[bank]),
                      normalized(np.asarray(train.images[held]), mean, std),
                      torch.as_tensor(train.labels[held]), every)
