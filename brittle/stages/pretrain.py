"""Pretrain stage: the backbone trained on the training images (brittle/ssl/fit.py), or released
weights imported from `backbone.checkpoint`, cached as `backbone.pt` (state dict) and
`curve.csv` (epoch, loss, kNN accuracy).

Its key is everything the trained weights depend on: the training images, the view transform
(`dataset.ssl_transform`, unless the backbone brings its own) and its normalisation, the backbone
and the seed. For released weights it is the backbone and the file's identity instead. A run's
tracker (`logger`) gets the loss and kNN curves of a training this run does; a cached backbone
sends none.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from brittle.data.datasets import Dataset
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import Execution
from brittle.runtime.progress import on_terminal
from brittle.runtime.stagetimes import timed_stage
from brittle.ssl.features import HEAD_FILE
from brittle.ssl.networks import feature_dim
from brittle.stages import data as data_stage
from brittle.stages.keys import key_of

log = logging.getLogger(__name__)

DEPENDS_ON = (*data_stage.DEPENDS_ON, "dataset.ssl_transform", "dataset.normalize", "backbone",
              "seed")
# backbone.features picks the embedding layer (the embed stage's key): the same training serves both
EXCLUDES = (*data_stage.TRAIN_ONLY, "backbone.features")


def key(cfg: DictConfig) -> dict:
    """The cache key: the whole slice, or for released weights the backbone and the file."""
    ckpt = cfg.backbone.get("checkpoint")
    if not ckpt:
        return key_of(cfg)
    path = Path(ckpt).expanduser().resolve()
    if not path.is_file():
        raise BrittleError(f"backbone.checkpoint={ckpt} does not exist (or is not a file); "
                           f"give the path of a weights file")
    return {"backbone": key_of(cfg.backbone), "file": str(path), "size": path.stat().st_size,
            "mtime": int(path.stat().st_mtime)}


@timed_stage("pretrain")
def run(cfg: DictConfig, ex: Execution, data: Dataset) -> Path:
    """The cache directory holding the backbone's `backbone.pt` and `curve.csv`."""
    if cfg.backbone.get("checkpoint"):
        return ex.cache.get_or_compute(
            "pretrain", key(cfg),
            lambda tmp: _import_checkpoint(cfg, tmp, ex.trust_checkpoint))
    if cfg.backbone.get("method") is None:
        raise BrittleError("this backbone (backbone.method: null) has no pretraining method; "
                           "give backbone.checkpoint=/path/to/weights.pth")
    return ex.cache.get_or_compute("pretrain", key(cfg),
                                   lambda tmp: _pretrain_into(cfg, ex, data, tmp))


def _import_checkpoint(cfg: DictConfig, out: Path, trust: bool) -> dict:
    """A released checkpoint as this project's backbone.pt, validated key by key (read with full
    unpickling only when `trust`)."""
    from brittle.ssl.checkpoints import load_release_checkpoint
    net = load_release_checkpoint(instantiate(cfg.backbone.net),
                                  Path(cfg.backbone.checkpoint), trust=trust)
    torch.save(net.state_dict(), out / "backbone.pt")
    (out / "curve.csv").write_text("epoch,loss,knn_accuracy\n")
    return {"seconds": 0.0, "feature_dim": feature_dim(net),
            "source": str(cfg.backbone.checkpoint)}


def _pretrain_into(cfg: DictConfig, ex: Execution, data: Dataset, out: Path) -> dict:
    from brittle.ssl.fit import fit_backbone  # Lightning: imported only when something is trained
    bcfg = cfg.backbone
    # a method may bring its own views (DINO's multi-crop); otherwise the dataset's
    transform = bcfg.transform if bcfg.get("transform") else cfg.dataset.ssl_transform
    fit = fit_backbone(bcfg, transform, cfg.dataset.normalize, data.train, int(cfg.seed),
                       ex.device, ex.progress and on_terminal(),
                       resume=ex.cache.partial("pretrain", key(cfg)), save_every=ex.save_every,
                       tracker=ex.tracker)
    torch.save(fit.net.state_dict(), out / "backbone.pt")
    head = getattr(fit, "head", None)   # the method's projection head: backbone.features=projection
    if head is not None:
        torch.save(head.state_dict(), out / HEAD_FILE)
    (out / "curve.csv").write_text("epoch,loss,knn_accuracy\n" + "".join(
        f"{i + 1},{v:.6f},{'' if k is None else f'{k:.4f}'}\n"
        for i, (v, k) in enumerate(zip(fit.losses, fit.knn))))
    if fit.losses and not math.isfinite(fit.losses[-1]):
        log.warning("pretraining loss is not finite (%s); features will be poor", fit.losses[-1])
    final_knn = next((k for k in reversed(fit.knn) if k is not None), None)
    return {"seconds": fit.seconds, "final_loss": fit.losses[-1] if fit.losses else None,
            "feature_dim": feature_dim(fit.net), "knn_accuracy": final_knn,
            "epoch_seconds": [round(t, 4) for t in fit.epoch_seconds]}
