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
    images_per_second: float  # embedding throughput


def normalized(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 [B, C, H, W], scaled to [0, 1] then standardised per channel."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def _batches(net: torch.nn.Module, images, mean: list[float], std: list[float], device: torch.device,
             batch_size: int, resize: int | None, channels: int | None):
    net.eval().to(device)
    for start in range(0, len(images), batch_size):
        x = normalized(np.asarray(images[start:start + batch_size]), mean, std).to(device)
        if channels and x.shape[1] != channels:  # grayscale into an RGB network
            x = x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x[:, :channels]
        if resize and x.shape[-1] != resize:  # e.g. 32x32 CIFAR into a 224x224 ImageNet network
            x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
        with torch.no_grad():
            yield start, net(x).flatten(1).float().cpu().numpy()


def features(net: torch.nn.Module, images, mean: list[float], std: list[float], device: torch.device,
             batch_size: int = 512, resize: int | None = None, channels: int | None = None) -> np.ndarray:
    """float32 [N, D] features of uint8 images [N, C, H, W], in eval mode, in batches."""
    return np.concatenate([f for _, f in _batches(net, images, mean, std, device, batch_size, resize, channels)])


def features_to(path: Path, net: torch.nn.Module, images, mean: list[float], std: list[float],
                device: torch.device, batch_size: int = 512, resize: int | None = None,
                channels: int | None = None) -> None:
    """Write float32 [N, D] features to an .npy memmap chunk by chunk: memory stays flat in N."""
    out = None
    for start, chunk in _batches(net, images, mean, std, device, batch_size, resize, channels):
        if out is None:
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(images), chunk.shape[1]))
        out[start:start + len(chunk)] = chunk
    if out is not None:
        out.flush()
        del out


def knn_accuracy(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray,
                 k: int = 20) -> float:
    """Cosine kNN (majority vote) accuracy: how class-aware the label-free features are."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)  # a fixed sample bounds the cost at ImageNet scale
    if len(train) > 20000:
        keep = np.sort(rng.choice(len(train), 20000, replace=False))
        train, train_y = np.asarray(train[keep]), train_y[keep]
    if len(test) > 5000:
        keep = np.sort(rng.choice(len(test), 5000, replace=False))
        test, test_y = np.asarray(test[keep]), test_y[keep]
    clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="cosine")
    return float(clf.fit(train, train_y).score(test, test_y))


def embed(cfg: DictConfig, data: Dataset, backbone_dir: Path, cache: StageCache) -> Embeddings:
    """Stage: embed train and test images with the pretrained backbone (cached)."""
    spec = {"pretrain": pretrain_spec(cfg), "dataset": dataset_spec(cfg),
            "normalize": OmegaConf.to_container(cfg.dataset.normalize, resolve=True)}

    def compute(tmp: Path) -> dict:
        net = load_backbone_weights(instantiate(cfg.backbone.net), backbone_dir / "backbone.pt")
        device = resolve_device(cfg)
        norm = cfg.backbone.get("normalize") or cfg.dataset.normalize
        mean, std = list(norm.mean), list(norm.std)
        opts = {"resize": cfg.backbone.get("resize"), "channels": cfg.backbone.get("in_channels")}
        start = time.perf_counter()
        for name, images in (("train", data.train.images), ("test", data.test.images)):
            features_to(tmp / f"{name}.npy", net, images, mean, std, device, **opts)
        seconds = time.perf_counter() - start
        train, test = np.load(tmp / "train.npy", mmap_mode="r"), np.load(tmp / "test.npy", mmap_mode="r")
        for name, arr in (("train", train), ("test", test)):
            if not all(np.isfinite(arr[i:i + 4096]).all() for i in range(0, len(arr), 4096)):
                raise BrittleError(f"{name} embeddings contain NaN or inf (backbone {backbone_dir}); "
                                   f"pretraining diverged: lower the learning rate or check the data")
        acc = knn_accuracy(train, data.train.labels, test, data.test.labels)
        n = len(train) + len(test)
        log.info("embedded %d images (%d-d) in %.1f s; kNN accuracy %.3f", n, train.shape[1], seconds, acc)
        return {"seconds": seconds, "images_per_second": n / max(seconds, 1e-9), "knn_accuracy": acc}

    out = cache.get_or_compute("embed", spec, compute)
    meta = StageCache.meta(out)
    seconds = float(meta.get("seconds", 0.0)) + float(StageCache.meta(backbone_dir).get("seconds", 0.0))
    # memory-mapped: an ImageNet-sized train set is read on demand, not loaded
    return Embeddings(np.load(out / "train.npy", mmap_mode="r"), np.load(out / "test.npy", mmap_mode="r"),
                      float(meta["knn_accuracy"]), out, seconds, float(meta.get("images_per_second", 0.0)))

