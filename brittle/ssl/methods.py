"""Pretraining methods as Lightning modules: MoCo v2, BYOL, SimCLR, DINO (lightly) and supervised.

Hyperparameters default to lightly's CIFAR-10 benchmark: SGD (momentum 0.9, weight decay 5e-4)
with lr = base_lr * batch_size / 128 and a cosine schedule. Every module receives batches
`(views, labels)` (a list of augmented views, labels used only by `Supervised`), logs its loss
per epoch, and may run a kNN monitor on held-out training images at the end of epochs.
"""
from __future__ import annotations

import copy
import logging
from typing import Any

import pytorch_lightning as pl
import torch
from lightly.loss import DINOLoss, NegativeCosineSimilarity, NTXentLoss
from lightly.models.modules import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    MoCoProjectionHead,
    SimCLRProjectionHead,
)
from lightly.models.utils import batch_shuffle, batch_unshuffle, deactivate_requires_grad
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from brittle.ssl import speed
from brittle.ssl.monitor import Monitor, knn_accuracy
from brittle.ssl.networks import feature_dim

log = logging.getLogger(__name__)


class Pretrainer(pl.LightningModule):
    """Shared optimiser, schedule, loss curve and kNN monitor of every pretraining method."""

    uses_labels = False
    # set by the methods that have them (declared: nn.Module's attribute typing is Tensor | Module)
    backbone_momentum: nn.Module
    projection_head_momentum: nn.Module
    projection_head: nn.Module
    prediction_head: nn.Module

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int, base_lr: float = 0.06,
                 weight_decay: float = 5e-4):
        super().__init__()
        self.backbone = backbone
        self.max_epochs, self.weight_decay = max_epochs, weight_decay
        self.lr = base_lr * batch_size / 128
        self.epoch_losses: list[float] = []
        self.knn_accuracies: list[float | None] = []
        self._running: list[torch.Tensor] = []
        self.monitor: Monitor | None = None
        self.monitor_every = 0
        self.views: nn.Module | None = None   # set by brittle/ssl/fit.py for device augmentation
        # of the views; brittle/ssl/fit.py may change it
        self.memory_format = torch.contiguous_format

    def set_monitor(self, bank_x: torch.Tensor, bank_y: torch.Tensor, query_x: torch.Tensor,
                    query_y: torch.Tensor, every: int) -> None:
        """kNN accuracy of query_x against bank_x (normalised float images) every `every` epochs."""
        self.monitor, self.monitor_every = (bank_x, bank_y, query_x, query_y), int(every)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """With device augmentation (`self.views`, brittle/ssl/views.py), uint8 images in, the
        method's views out (else the DataLoader made them), in the network's memory format."""
        views, labels = batch
        if self.views is not None:
            views = self.views(views)
        return [v.contiguous(memory_format=self.memory_format) for v in views], labels

    def compile_for_training(self, mode: str) -> None:
        """torch.compile of the networks and views (`backbone.compile`, brittle/ssl/speed.py)."""
        speed.compile_networks(self, mode)

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def record(self, loss: torch.Tensor) -> torch.Tensor:
        """Keep the step's loss on the device for the epoch mean (read and logged once an epoch:
        a read each step would wait for the GPU each step)."""
        self._running.append(loss.detach())
        return loss

    def knn_accuracy(self, k: int = 20, temperature: float = 0.1) -> float:
        assert self.monitor is not None, "set_monitor first"
        return knn_accuracy(self.backbone, self.monitor, self.device, k, temperature)

    def on_train_epoch_end(self) -> None:
        if self._running:
            self.epoch_losses.append(float(torch.stack(self._running).float().mean()))
            self.log("train_loss", self.epoch_losses[-1], prog_bar=True)
        self._running = []
        epoch = len(self.epoch_losses)
        knn = None
        if self.monitor is not None and self.monitor_every > 0 and \
                (epoch % self.monitor_every == 0 or epoch == self.max_epochs):
            knn = self.knn_accuracy()
            self.log("knn_accuracy", knn, prog_bar=True)
        self.knn_accuracies.append(knn)
        log.info("pretrain epoch %d/%d: loss %.4f%s", epoch, self.max_epochs,
                 self.epoch_losses[-1] if self.epoch_losses else float("nan"),
                 f", kNN accuracy {knn:.3f}" if knn is not None else "")

    def configure_optimizers(self) -> Any:
        optim = torch.optim.SGD(self.trainable(), lr=self.lr, momentum=0.9,
                                weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(1, self.max_epochs))
        return [optim], [sched]

    def _add_momentum_encoder(self) -> None:
        """Frozen copies of backbone and projection head, updated by EMA (MoCo, BYOL)."""
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)

    def momentum_at(self, start: float) -> float:
        """Momentum of the teacher: cosine from `start` to 1 over training (BYOL, DINO)."""
        return cosine_schedule(self.current_epoch, max(1, self.max_epochs), start, 1.0)


class MoCo(Pretrainer):
    """MoCo v2: symmetric NT-Xent with a memory bank, momentum encoder, batch shuffling (lightly's
    loss without a device read per step: brittle/ssl/speed.py)."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 512, proj_out: int = 128, temperature: float = 0.1,
                 memory_bank: int = 4096, momentum: float = 0.99, base_lr: float = 0.06,
                 weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = MoCoProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self._add_momentum_encoder()
        # lightly 1.6 needs the (size, dim) form of the memory bank
        self.criterion = NTXentLoss(temperature=temperature,
                                    memory_bank_size=(memory_bank, proj_out))
        if memory_bank > 0:
            self.criterion.memory_bank = speed.HostPointerBank(self.criterion.memory_bank)
        self.contrast = speed.bank_contrastive_loss
        self.momentum = momentum

    def compile_for_training(self, mode: str) -> None:
        super().compile_for_training(mode)
        self.contrast = torch.compile(speed.bank_contrastive_loss, mode=mode, dynamic=False)

    def on_train_start(self) -> None:
        if isinstance(self.criterion.memory_bank, speed.HostPointerBank):   # after a resume
            self.criterion.memory_bank.sync_position()

    def _loss(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """One view's queries against the other's keys, which then join the bank (the second
        direction of a step sees the first's keys, as in lightly)."""
        q = self.projection_head(self.backbone(query).flatten(1))
        with torch.no_grad():
            key, shuffle = batch_shuffle(key)
            k = self.projection_head_momentum(self.backbone_momentum(key).flatten(1))
            k = batch_unshuffle(k, shuffle)
        return speed.bank_loss(self.criterion, self.contrast, q, k)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        speed.ema_update(self.backbone, self.backbone_momentum, self.momentum)
        speed.ema_update(self.projection_head, self.projection_head_momentum, self.momentum)
        return self.record(0.5 * (self._loss(x0, x1) + self._loss(x1, x0)))


class BYOL(Pretrainer):
    """BYOL: online projection + prediction against a momentum target, negative cosine loss."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 1024, proj_out: int = 256, momentum: float = 0.99,
                 base_lr: float = 0.06, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = BYOLProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self.prediction_head = BYOLPredictionHead(proj_out, proj_hidden, proj_out)
        self._add_momentum_encoder()
        self.criterion = NegativeCosineSimilarity()
        self.momentum = momentum

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        m = self.momentum_at(self.momentum)
        speed.ema_update(self.backbone, self.backbone_momentum, m)
        speed.ema_update(self.projection_head, self.projection_head_momentum, m)
        p0 = self.prediction_head(self.projection_head(self.backbone(x0).flatten(1)))
        p1 = self.prediction_head(self.projection_head(self.backbone(x1).flatten(1)))
        with torch.no_grad():
            z0 = self.projection_head_momentum(self.backbone_momentum(x0).flatten(1))
            z1 = self.projection_head_momentum(self.backbone_momentum(x1).flatten(1))
        return self.record(0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0)))


class SimCLR(Pretrainer):
    """SimCLR: NT-Xent between two views' projections, in-batch negatives."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 512, proj_out: int = 128, temperature: float = 0.5,
                 base_lr: float = 0.06, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = SimCLRProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self.criterion = NTXentLoss(temperature=temperature)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        z0 = self.projection_head(self.backbone(x0).flatten(1))
        z1 = self.projection_head(self.backbone(x1).flatten(1))
        return self.record(self.criterion(z0, z1))


class DINO(Pretrainer):
    """DINO: self-distillation of a momentum teacher (global views) into the student (all views)."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 2048, bottleneck: int = 256, proj_out: int = 2048,
                 momentum: float = 0.996, warmup_teacher_temp_epochs: int = 5,
                 base_lr: float = 0.06, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.head = DINOProjectionHead(feature_dim(backbone), proj_hidden, bottleneck, proj_out,
                                       batch_norm=True, freeze_last_layer=1)
        self.backbone_teacher = copy.deepcopy(backbone)
        self.head_teacher = DINOProjectionHead(feature_dim(backbone), proj_hidden, bottleneck,
                                               proj_out, batch_norm=True)
        self.head_teacher.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.backbone_teacher)
        deactivate_requires_grad(self.head_teacher)
        self.criterion = DINOLoss(output_dim=proj_out,
                                  warmup_teacher_temp_epochs=warmup_teacher_temp_epochs)
        self.momentum = momentum

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        views, _ = batch
        m = self.momentum_at(self.momentum)
        speed.ema_update(self.backbone, self.backbone_teacher, m)
        speed.ema_update(self.head, self.head_teacher, m)
        with torch.no_grad():
            teacher = [self.head_teacher(self.backbone_teacher(v).flatten(1)) for v in views[:2]]
        student = [self.head(self.backbone(v).flatten(1)) for v in views]
        return self.record(self.criterion(teacher, student, epoch=self.current_epoch))

    def on_after_backward(self) -> None:
        self.head.cancel_last_layer_gradients(current_epoch=self.current_epoch)


class Supervised(Pretrainer):
    """The same backbone trained with labels (cross-entropy through a linear head) on the first
    augmented view: the paper's "supervised features" baseline."""

    uses_labels = True

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int, num_classes: int,
                 base_lr: float = 0.1, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.head = nn.Linear(feature_dim(backbone), num_classes)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, *_), y = batch
        return self.record(nn.functional.cross_entropy(self.head(self.backbone(x0).flatten(1)), y))
