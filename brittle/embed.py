"""Embedding stage: penultimate-layer features of every train and test image.

Writes `train.npy` float32 [N_train, D] and `test.npy` float32 [N_test, D] into the stage cache,
and records a label-free sanity figure: the kNN accuracy of test features against train features.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from brittle.artifacts import StageCache
from brittle.backbones import load_backbone_weights
from brittle.config import dataset_spec, resolve_device
from brittle.data import Dataset
from brittle.errors import BrittleError
from brittle.ssl import pretrain_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embeddings:
    """train: float32 [N_train, D]; test: float32 [N_test, D]; knn_accuracy on test."""
    train: np.ndarray
    test: np.ndarray
    knn_accuracy: float
    directory: Path
    seconds: float  # pretraining + embedding time, as recorded when they were computed


def normalized(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 [B, C, H, W], scaled to [0, 1] then standardised per channel."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


@torch.no_grad()
def features(net: torch.nn.Module, images: np.ndarray, mean: list[float], std: list[float],
             device: torch.device, batch_size: int = 512) -> np.ndarray:
    """float32 [N, D] features of uint8 images [N, C, H, W], in eval mode, in batches."""
    net.eval().to(device)
    out = []
    for start in range(0, len(images), batch_size):
        x = normalized(images[start:start + batch_size], mean, std).to(device)
        out.append(net(x).flatten(1).float().cpu())
    return torch.cat(out).numpy()


def knn_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                 k: int = 20) -> float:
    """Cosine kNN (majority vote) accuracy: how class-aware the label-free features are."""
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="cosine")
    return float(clf.fit(train, train_y).score(test, test_y))


def embed(cfg: DictConfig, data: Dataset, backbone_dir: Path, cache: StageCache) -> Embeddings:
    """Stage: embed train and test images with the pretrained backbone (cached)."""
    spec = {"pretrain": pretrain_spec(cfg), "dataset": dataset_spec(cfg),
            "normalize": OmegaConf.to_container(cfg.dataset.normalize, resolve=True)}

    def compute(tmp: Path) -> dict:
        net = load_backbone_weights(instantiate(cfg.backbone.net), backbone_dir / "backbone.pt")
        device = resolve_device(cfg)
        mean, std = list(cfg.dataset.normalize.mean), list(cfg.dataset.normalize.std)
        start = time.perf_counter()
        train = features(net, data.train.images, mean, std, device)
        test = features(net, data.test.images, mean, std, device)
        seconds = time.perf_counter() - start
        for name, arr in (("train", train), ("test", test)):
            if not np.isfinite(arr).all():
                raise BrittleError(f"{name} embeddings contain NaN or inf (backbone {backbone_dir}); "
                                   f"pretraining diverged: lower the learning rate or check the data")
            np.save(tmp / f"{name}.npy", arr)
        acc = knn_accuracy(train, data.train.labels, test, data.test.labels)
        n = len(train) + len(test)
        log.info("embedded %d images (%d-d) in %.1f s; kNN accuracy %.3f", n, train.shape[1], seconds, acc)
        return {"seconds": seconds, "images_per_second": n / max(seconds, 1e-9), "knn_accuracy": acc}

    out = cache.get_or_compute("embed", spec, compute)
    meta = StageCache.meta(out)
    seconds = float(meta.get("seconds", 0.0)) + float(StageCache.meta(backbone_dir).get("seconds", 0.0))
    return Embeddings(np.load(out / "train.npy"), np.load(out / "test.npy"),
                      float(meta["knn_accuracy"]), out, seconds)

