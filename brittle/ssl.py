"""Pretrain stage: train the configured backbone with its method (brittle.methods) in Lightning.

The pretrain stage trains the configured backbone on the *training* images only (no labels), and
stores the backbone's state dict plus the per-epoch loss curve in the stage cache.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch.utils.data import DataLoader

from brittle.artifacts import StageCache
from brittle.data import Dataset, ImageSet
from brittle.errors import BrittleError

log = logging.getLogger(__name__)


class Views(torch.utils.data.Dataset):
    """uint8 images [N, C, H, W] -> (list of augmented views from a lightly transform, label);
    the label is -1 unless the method trains with labels."""

    def __init__(self, images: np.ndarray, transform: Any, labels: np.ndarray | None = None):
        self.images, self.transform, self.labels = images, transform, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], int]:
        img = np.asarray(self.images[i])
        pil = Image.fromarray(img[0]) if img.shape[0] == 1 else Image.fromarray(img.transpose(1, 2, 0))
        views = self.transform(pil)
        return list(views), int(self.labels[i]) if self.labels is not None else -1


def pretrain_spec(cfg: DictConfig) -> dict:
    """The config the pretrained backbone depends on: data, backbone, seed."""
    from brittle.config import dataset_spec
    spec = {"dataset": dataset_spec(cfg, include_test=False),
            "backbone": OmegaConf.to_container(cfg.backbone, resolve=True), "seed": int(cfg.seed)}
    ckpt = cfg.backbone.get("checkpoint")
    if ckpt:  # released weights: their file, not the data, decides the backbone
        path = Path(ckpt).expanduser().resolve()
        if not path.exists():
            raise BrittleError(f"backbone.checkpoint={ckpt} does not exist")
        spec = {"backbone": spec["backbone"], "file": str(path), "size": path.stat().st_size,
                "mtime": int(path.stat().st_mtime)}
    return spec


def pretrain(cfg: DictConfig, data: Dataset, cache: StageCache) -> Path:
    """Stage: pretrain the backbone on the training images (or, with `backbone.checkpoint`, load
    released weights); returns the cache directory holding `backbone.pt` (state dict) and
    `curve.csv` (epoch, loss, kNN accuracy)."""
    if cfg.backbone.get("checkpoint"):
        return cache.get_or_compute("pretrain", pretrain_spec(cfg), lambda tmp: _import_checkpoint(cfg, tmp))
    if cfg.backbone.get("method") is None:
        raise BrittleError(f"backbone={cfg.backbone.get('name')} has no pretraining method; "
                           f"give backbone.checkpoint=/path/to/weights.pth")
    return cache.get_or_compute("pretrain", pretrain_spec(cfg), lambda tmp: _pretrain_into(cfg, data.train, tmp))


def _import_checkpoint(cfg: DictConfig, out: Path) -> dict:
    """A released checkpoint as this project's backbone.pt, validated key by key."""
    from brittle.backbones import load_release_checkpoint
    net = load_release_checkpoint(instantiate(cfg.backbone.net), Path(cfg.backbone.checkpoint))
    torch.save(net.state_dict(), out / "backbone.pt")
    (out / "curve.csv").write_text("epoch,loss,knn_accuracy\n")
    return {"seconds": 0.0, "feature_dim": int(net.feature_dim), "source": str(cfg.backbone.checkpoint)}


def _pretrain_into(cfg: DictConfig, train: ImageSet, out: Path) -> dict:
    bcfg = cfg.backbone
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    net = instantiate(bcfg.net)
    extra = {"num_classes": len(train.classes)} if "num_classes" in bcfg.method and \
        bcfg.method.num_classes is None else {}  # e.g. an image folder: classes come from disk
    model = instantiate(bcfg.method, backbone=net, max_epochs=int(bcfg.epochs),
                        batch_size=int(bcfg.batch_size), **extra)
    # a method may bring its own views (DINO's multi-crop); otherwise the dataset's
    transform = instantiate(bcfg.transform if bcfg.get("transform") else cfg.dataset.ssl_transform)
    _attach_monitor(cfg, model, train)
    labels = train.labels if getattr(model, "uses_labels", False) else None
    loader = DataLoader(Views(train.images, transform, labels), batch_size=int(bcfg.batch_size),
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
    losses, knn = model.epoch_losses, model.knn_accuracies
    (out / "curve.csv").write_text("epoch,loss,knn_accuracy\n" + "".join(
        f"{i + 1},{v:.6f},{'' if k is None else f'{k:.4f}'}\n" for i, (v, k) in enumerate(zip(losses, knn))))
    if losses and not math.isfinite(losses[-1]):
        log.warning("pretraining loss is not finite (%s); features will be poor", losses[-1])
    log.info("pretrained %s for %d epochs in %.1f s (final loss %.4f)",
             type(model).__name__, int(bcfg.epochs), seconds, losses[-1] if losses else float("nan"))
    final_knn = next((k for k in reversed(knn) if k is not None), None)
    return {"seconds": seconds, "final_loss": losses[-1] if losses else None,
            "feature_dim": int(net.feature_dim), "knn_accuracy": final_knn}


def _attach_monitor(cfg: DictConfig, model: Any, train: ImageSet) -> None:
    """kNN monitor: 10% of the training images (balanced, fixed) as queries against the rest.
    Labels serve only this measurement, never the self-supervised training."""
    every = int(cfg.backbone.get("knn_every", 0))
    if every <= 0 or len(train) < 50:
        return
    from brittle.data import balanced_subset
    from brittle.embed import normalized
    held = balanced_subset(train.labels, max(len(np.unique(train.labels)), len(train) // 10), 0, "monitor")
    bank = np.setdiff1d(np.arange(len(train)), held)
    mean, std = list(cfg.dataset.normalize.mean), list(cfg.dataset.normalize.std)
    model.set_monitor(normalized(np.asarray(train.images[bank]), mean, std), torch.as_tensor(train.labels[bank]),
                      normalized(np.asarray(train.images[held]), mean, std), torch.as_tensor(train.labels[held]),
                      every)


def _accelerator(cfg: DictConfig) -> str:
    from brittle.config import resolve_device
    return "gpu" if resolve_device(cfg).type == "cuda" else "cpu"
