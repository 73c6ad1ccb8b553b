"""Pretraining of a feature backbone in Lightning: MoCo v2 (lightly), or supervised for the baseline.

The pretrain stage trains the configured backbone on the *training* images only (no labels), and
stores the backbone's state dict plus the per-epoch loss curve in the stage cache.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from lightly.loss import NTXentLoss
from lightly.models.modules import MoCoProjectionHead
from lightly.models.utils import batch_shuffle, batch_unshuffle, deactivate_requires_grad, update_momentum
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from brittle.artifacts import StageCache
from brittle.data import Dataset, ImageSet

log = logging.getLogger(__name__)


class MoCo(pl.LightningModule):
    """MoCo v2 as in lightly's CIFAR-10 benchmark: symmetric NT-Xent loss with a memory bank,
    momentum encoder, batch shuffling, SGD with lr = base_lr * batch_size / 128, cosine decay."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 512, proj_out: int = 128, temperature: float = 0.1,
                 memory_bank: int = 4096, momentum: float = 0.99, base_lr: float = 0.06,
                 weight_decay: float = 5e-4):
        super().__init__()
        self.backbone = backbone
        self.projection_head = MoCoProjectionHead(backbone.feature_dim, proj_hidden, proj_out)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)
        # lightly 1.6 needs the (size, dim) form of the memory bank
        self.criterion = NTXentLoss(temperature=temperature, memory_bank_size=(memory_bank, proj_out))
        self.momentum, self.max_epochs = momentum, max_epochs
        self.lr = base_lr * batch_size / 128
        self.weight_decay = weight_decay
        self.epoch_losses: list[float] = []
        self._running: list[float] = []

    def _pair(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.projection_head(self.backbone(query).flatten(1))
        with torch.no_grad():
            key, shuffle = batch_shuffle(key)
            k = self.projection_head_momentum(self.backbone_momentum(key).flatten(1))
            k = batch_unshuffle(k, shuffle)
        return q, k

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x0, x1 = batch
        update_momentum(self.backbone, self.backbone_momentum, self.momentum)
        update_momentum(self.projection_head, self.projection_head_momentum, self.momentum)
        loss = 0.5 * (self.criterion(*self._pair(x0, x1)) + self.criterion(*self._pair(x1, x0)))
        self.log("train_loss_ssl", loss, prog_bar=True)
        self._running.append(float(loss.detach()))
        return loss

    def on_train_epoch_end(self) -> None:
        if self._running:
            self.epoch_losses.append(float(np.mean(self._running)))
            log.info("pretrain epoch %d/%d: loss %.4f", len(self.epoch_losses), self.max_epochs,
                     self.epoch_losses[-1])
        self._running = []

    def configure_optimizers(self) -> Any:
        params = list(self.backbone.parameters()) + list(self.projection_head.parameters())
        optim = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(1, self.max_epochs))
        return [optim], [sched]


class Supervised(pl.LightningModule):
    """The same backbone trained with labels (cross-entropy through a linear head), on the first
    augmented view; the paper's "supervised features" baseline. SGD, cosine schedule."""

    uses_labels = True

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int, num_classes: int,
                 base_lr: float = 0.1, weight_decay: float = 5e-4):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, num_classes)
        self.max_epochs, self.weight_decay = max_epochs, weight_decay
        self.lr = base_lr * batch_size / 128
        self.epoch_losses: list[float] = []
        self._running: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x0, _, y = batch
        loss = nn.functional.cross_entropy(self.head(self.backbone(x0).flatten(1)), y)
        self.log("train_loss_supervised", loss, prog_bar=True)
        self._running.append(float(loss.detach()))
        return loss

    on_train_epoch_end = MoCo.on_train_epoch_end

    def configure_optimizers(self) -> Any:
        optim = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(1, self.max_epochs))
        return [optim], [sched]


class TwoViews(torch.utils.data.Dataset):
    """uint8 images [N, C, H, W] -> two augmented views per image (a lightly transform), plus the
    label when labels are given (supervised pretraining)."""

    def __init__(self, images: np.ndarray, transform: Any, labels: np.ndarray | None = None):
        self.images, self.transform, self.labels = images, transform, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple:
        img = self.images[i]
        pil = Image.fromarray(img[0]) if img.shape[0] == 1 else Image.fromarray(img.transpose(1, 2, 0))
        views = self.transform(pil)
        if self.labels is None:
            return views[0], views[1]
        return views[0], views[1], int(self.labels[i])


def pretrain_spec(cfg: DictConfig) -> dict:
    """The config the pretrained backbone depends on: data, backbone, seed."""
    from brittle.config import dataset_spec
    return {"dataset": dataset_spec(cfg, include_test=False), "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
            "seed": int(cfg.seed)}


def pretrain(cfg: DictConfig, data: Dataset, cache: StageCache) -> Path:
    """Stage: SSL-pretrain the backbone on the training images; returns the cache directory
    holding `backbone.pt` (state dict) and `curve.csv` (epoch, loss)."""
    return cache.get_or_compute("pretrain", pretrain_spec(cfg), lambda tmp: _pretrain_into(cfg, data.train, tmp))


def _pretrain_into(cfg: DictConfig, train: ImageSet, out: Path) -> dict:
    bcfg = cfg.backbone
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    net = instantiate(bcfg.net)
    model = instantiate(bcfg.method, backbone=net, max_epochs=int(bcfg.epochs),
                        batch_size=int(bcfg.batch_size))
    transform = instantiate(cfg.dataset.ssl_transform)
    labels = train.labels if getattr(model, "uses_labels", False) else None
    loader = DataLoader(TwoViews(train.images, transform, labels), batch_size=int(bcfg.batch_size),
                        shuffle=True, drop_last=len(train) > int(bcfg.batch_size),
                        num_workers=int(bcfg.num_workers), persistent_workers=int(bcfg.num_workers) > 0)
    trainer = pl.Trainer(max_epochs=int(bcfg.epochs), accelerator=_accelerator(cfg), devices=1,
                         precision=bcfg.precision, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=bool(cfg.progress),
                         deterministic=_accelerator(cfg) == "cpu")
    start = time.perf_counter()
    trainer.fit(model, loader)
    seconds = time.perf_counter() - start
    if trainer.interrupted or trainer.current_epoch < int(bcfg.epochs):
        # never cache a backbone whose training was cut short (e.g. a scheduler's SIGTERM)
        raise RuntimeError(f"pretraining stopped at epoch {trainer.current_epoch} of {int(bcfg.epochs)}")
    torch.save(net.state_dict(), out / "backbone.pt")
    losses = model.epoch_losses
    (out / "curve.csv").write_text("epoch,loss\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(losses)))
    if losses and not math.isfinite(losses[-1]):
        log.warning("pretraining loss is not finite (%s); features will be poor", losses[-1])
    log.info("pretrained %s for %d epochs in %.1f s (final loss %.4f)",
             type(model).__name__, int(bcfg.epochs), seconds, losses[-1] if losses else float("nan"))
    return {"seconds": seconds, "final_loss": losses[-1] if losses else None,
            "feature_dim": int(net.feature_dim)}


def _accelerator(cfg: DictConfig) -> str:
    from brittle.config import resolve_device
    return "gpu" if resolve_device(cfg).type == "cuda" else "cpu"
