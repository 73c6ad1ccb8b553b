"""The paper's reference code's other pretraining methods, lightly's CIFAR-10 benchmark set:
Barlow Twins, SimSiam, SwAV, NNCLR, DCL, DCLW and SMoG (MoCo, BYOL, SimCLR, DINO: methods.py).

Each is a `Pretrainer` (shared schedule, loss curve, kNN monitor) built from lightly's heads and
losses with the benchmark's settings, which the reference code (vasusingla/simple-data-attribution,
`self_supervised_models/models/`) keeps: the 2-layer CIFAR-10 projection heads of Barlow Twins,
SimSiam and NNCLR, SimSiam and SMoG without learning-rate scaling, SwAV with Adam. Each takes
two views of a batch (the dataset's two-view transform).
"""
from __future__ import annotations

from typing import Any

import torch
from lightly.loss import (
    BarlowTwinsLoss,
    DCLLoss,
    DCLWLoss,
    NegativeCosineSimilarity,
    NTXentLoss,
    SwaVLoss,
)
from lightly.loss.memory_bank import MemoryBankModule
from lightly.models.modules import NNMemoryBankModule
from lightly.models.modules.heads import (
    NNCLRPredictionHead,
    ProjectionHead,
    SimCLRProjectionHead,
    SimSiamPredictionHead,
    SMoGPredictionHead,
    SMoGProjectionHead,
    SMoGPrototypes,
    SwaVProjectionHead,
    SwaVPrototypes,
)
from torch import nn

from brittle.ssl.methods import Pretrainer
from brittle.ssl.networks import feature_dim
from brittle.ssl.speed import ema_update


def _two_layer(dim: int, hidden: int, out: int, out_norm: bool) -> ProjectionHead:
    """The benchmark's CIFAR-10 projection: Linear-BN-ReLU, Linear (+ BN when `out_norm`)."""
    return ProjectionHead([(dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)),
                           (hidden, out, nn.BatchNorm1d(out) if out_norm else None, None)])


def _projected_and_predicted(model: Pretrainer,
                             x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A view's projection with its gradient stopped, and its prediction (SimSiam, NNCLR)."""
    z = model.projection_head(model.backbone(x).flatten(1))
    return z.detach(), model.prediction_head(z)


class BarlowTwins(Pretrainer):
    """Barlow Twins: the cross-correlation of two views' projections driven to the identity."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 2048, proj_out: int = 2048, lambda_param: float = 0.005,
                 base_lr: float = 0.06, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = _two_layer(feature_dim(backbone), proj_hidden, proj_out,
                                          out_norm=False)
        self.criterion = BarlowTwinsLoss(lambda_param=lambda_param)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        z0 = self.projection_head(self.backbone(x0).flatten(1))
        return self.record(self.criterion(z0, self.projection_head(self.backbone(x1).flatten(1))))


class SimSiam(Pretrainer):
    """SimSiam: each view's prediction against the other's stopped-gradient projection; the
    learning rate is not scaled with the batch (the benchmark's choice, for stability)."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 2048, proj_out: int = 2048, pred_hidden: int = 512,
                 base_lr: float = 0.06, weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.lr = base_lr
        self.projection_head = _two_layer(feature_dim(backbone), proj_hidden, proj_out,
                                          out_norm=True)
        self.prediction_head = SimSiamPredictionHead(proj_out, pred_hidden, proj_out)
        self.criterion = NegativeCosineSimilarity()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        (z0, p0), (z1, p1) = _projected_and_predicted(self, x0), _projected_and_predicted(self, x1)
        return self.record(0.5 * (self.criterion(z0, p1) + self.criterion(z1, p0)))


class NNCLR(Pretrainer):
    """NNCLR: NT-Xent between a view's prediction and the nearest neighbour, in a memory bank of
    earlier projections, of the other view's projection."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 2048, proj_out: int = 256, pred_hidden: int = 4096,
                 memory_bank: int = 4096, temperature: float = 0.5, base_lr: float = 0.06,
                 weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = _two_layer(feature_dim(backbone), proj_hidden, proj_out,
                                          out_norm=True)
        self.prediction_head = NNCLRPredictionHead(proj_out, pred_hidden, proj_out)
        self.criterion = NTXentLoss(temperature=temperature)
        self.memory_bank = NNMemoryBankModule(size=(memory_bank, proj_out))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        (z0, p0), (z1, p1) = _projected_and_predicted(self, x0), _projected_and_predicted(self, x1)
        z0, z1 = self.memory_bank(z0, update=False), self.memory_bank(z1, update=True)
        return self.record(0.5 * (self.criterion(z0, p1) + self.criterion(z1, p0)))


class DCL(Pretrainer):
    """Decoupled contrastive learning (DCL; DCLW with `weighted`): NT-Xent without the positive
    pair in the denominator, on SimCLR's projection."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 512, proj_out: int = 128, temperature: float = 0.1,
                 weighted: bool = False, sigma: float = 0.5, base_lr: float = 0.06,
                 weight_decay: float = 5e-4):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = SimCLRProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self.criterion = (DCLWLoss(temperature=temperature, sigma=sigma) if weighted
                          else DCLLoss(temperature))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        z0 = self.projection_head(self.backbone(x0).flatten(1))
        return self.record(self.criterion(z0, self.projection_head(self.backbone(x1).flatten(1))))


class SwAV(Pretrainer):
    """SwAV: swapped prediction of Sinkhorn cluster assignments over learned prototypes (the
    benchmark's CIFAR-10 form: two crops of the full size, Adam)."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 512, proj_out: int = 128, n_prototypes: int = 512,
                 base_lr: float = 1e-3, weight_decay: float = 1e-6):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.projection_head = SwaVProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self.prototypes = SwaVPrototypes(proj_out, n_prototypes)
        self.criterion = SwaVLoss()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        views, _ = batch
        self.prototypes.normalize()
        heads = [self.projection_head(self.backbone(v).flatten(1)) for v in views]
        outs = [self.prototypes(nn.functional.normalize(h, dim=1)) for h in heads]
        return self.record(self.criterion(outs[:2], outs[2:]))

    def configure_optimizers(self) -> Any:
        optim = torch.optim.Adam(self.trainable(), lr=self.lr, weight_decay=self.weight_decay)
        return [optim], [torch.optim.lr_scheduler.CosineAnnealingLR(optim, max(1, self.max_epochs))]


class SMoG(Pretrainer):
    """SMoG: a momentum encoder's projections assigned to `n_groups` group features, which the
    online prediction must classify; every `reset_every` steps the groups are re-clustered
    (k-means over a memory bank of projections) and the momentum encoder re-copied."""

    def __init__(self, backbone: nn.Module, max_epochs: int, batch_size: int,
                 proj_hidden: int = 2048, proj_out: int = 128, n_groups: int = 300,
                 memory_bank: int = 10000, beta: float = 0.99, temperature: float = 0.1,
                 momentum: float = 0.99, reset_every: int = 300, base_lr: float = 0.01,
                 weight_decay: float = 1e-6):
        super().__init__(backbone, max_epochs, batch_size, base_lr, weight_decay)
        self.lr = base_lr   # the benchmark does not scale SMoG's learning rate
        self.projection_head = SMoGProjectionHead(feature_dim(backbone), proj_hidden, proj_out)
        self.prediction_head = SMoGPredictionHead(proj_out, proj_hidden, proj_out)
        self._add_momentum_encoder()
        groups = nn.functional.normalize(torch.rand(n_groups, proj_out), dim=1)
        self.smog = SMoGPrototypes(group_features=groups, beta=beta)
        self.memory_bank = MemoryBankModule(size=(memory_bank, proj_out), feature_dim_first=False)
        self.n_groups, self.temperature = int(n_groups), float(temperature)
        self.momentum, self.reset_every = float(momentum), int(reset_every)

    def _reset(self) -> None:
        """Group features from k-means over the bank; a fresh copy of the online encoder."""
        from sklearn.cluster import KMeans

        bank = self.memory_bank.bank.detach().float().cpu().numpy()
        centers = KMeans(self.n_groups, n_init=1, random_state=0).fit(bank).cluster_centers_
        groups = nn.functional.normalize(torch.as_tensor(centers).float(), dim=1)
        self.smog.set_group_features(groups.to(self.device))
        self.backbone_momentum.load_state_dict(self.backbone.state_dict())
        self.projection_head_momentum.load_state_dict(self.projection_head.state_dict())

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (x0, x1, *_), _ = batch
        if self.global_step > 0 and self.global_step % self.reset_every == 0:
            self._reset()
        else:
            ema_update(self.backbone, self.backbone_momentum, self.momentum)
            ema_update(self.projection_head, self.projection_head_momentum, self.momentum)
        if batch_idx % 2:   # the views swap roles every other step
            x0, x1 = x1, x0
        online = self.projection_head(self.backbone(x0).flatten(1))
        with torch.no_grad():
            target = self.projection_head_momentum(self.backbone_momentum(x1).flatten(1))
        assignments = self.smog.assign_groups(target)
        groups = self.smog.get_updated_group_features(online)
        logits = self.smog(self.prediction_head(online), groups, temperature=self.temperature)
        self.smog.set_group_features(groups)
        self.memory_bank(online, update=True)
        return self.record(nn.functional.cross_entropy(logits, assignments))
