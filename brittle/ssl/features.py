"""Backbone features of uint8 images: batched extraction (in memory or streamed into an .npy file)
and the kNN accuracy that tells how class-aware label-free features are.

`backbone.features` says which layer is the embedding: `backbone` (the default), the backbone's
pooled output (512-d for a ResNet-18), or `projection`, that output passed on through the
pretraining method's projection head (MoCo's: 128-d), as the pretraining saved it next to the
backbone (`projection_head.pt`).
"""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brittle.data.datasets import normalized
from brittle.runtime.errors import BrittleError

FEATURES = ("backbone", "projection")
HEAD_FILE = "projection_head.pt"   # the method's projection head (state dict), beside backbone.pt


def features_setting(bcfg: Any) -> str:
    """`backbone.features` of a backbone config, checked."""
    value = bcfg.features
    if value not in FEATURES:
        raise BrittleError(f"backbone.features={value} is not valid; use one of {list(FEATURES)}")
    return str(value)


class Projected(nn.Module):
    """A backbone followed by a projection head: [B, C, H, W] -> [B, D_head]."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).flatten(1))


def method_head(bcfg: Any, backbone: nn.Module) -> nn.Module:
    """The (untrained) projection head that `bcfg.method` builds on `backbone`; one clear error
    for a backbone without a method (released weights) or a method without a projection head."""
    from hydra.utils import instantiate

    if bcfg.get("checkpoint") or bcfg.get("method") is None:
        raise BrittleError("backbone.features=projection needs the head of a pretraining method; "
                           "this backbone's weights are imported without one; use "
                           "backbone.features=backbone")
    # the head does not depend on the class count (only Supervised's, which has no projection head)
    needs_classes = "num_classes" in bcfg.method and bcfg.method.num_classes is None
    extra = {"num_classes": 2} if needs_classes else {}
    model = instantiate(bcfg.method, backbone=backbone, max_epochs=1,
                        batch_size=int(bcfg.batch_size), **extra)
    head = getattr(model, "projection_head", None)
    if not isinstance(head, nn.Module):
        raise BrittleError(f"backbone.features=projection: this backbone's method "
                           f"({type(model).__name__}) has no projection head; use "
                           f"backbone.features=backbone")
    return head


def projection_dim(head: nn.Module, in_dim: int) -> int:
    """The width of a head's output for `in_dim` inputs."""
    with torch.no_grad():
        return int(head.eval()(torch.zeros(1, in_dim)).shape[1])


def _batches(net: torch.nn.Module, images, mean: list[float], std: list[float],
             device: torch.device, batch_size: int, resize: int | None, channels: int | None):
    net.eval().to(device)
    for start in range(0, len(images), batch_size):
        x = normalized(np.asarray(images[start:start + batch_size]), mean, std).to(device)
        if channels and x.shape[1] != channels:  # grayscale into an RGB network
            x = x.expand(-1, channels, -1, -1) if x.shape[1] == 1 else x[:, :channels]
        if resize and x.shape[-1] != resize:  # e.g. 32x32 CIFAR into a 224x224 ImageNet network
            x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bilinear",
                                                align_corners=False)
        with torch.no_grad():
            yield start, net(x).flatten(1).float().cpu().numpy()


def features(net: torch.nn.Module, images, mean: list[float], std: list[float],
             device: torch.device, batch_size: int = 512, resize: int | None = None,
             channels: int | None = None) -> np.ndarray:
    """float32 [N, D] features of uint8 images [N, C, H, W], in eval mode, in batches."""
    return np.concatenate([f for _, f in _batches(net, images, mean, std, device, batch_size,
                                                  resize, channels)])


def features_to(path: Path, net: torch.nn.Module, images, mean: list[float], std: list[float],
                device: torch.device, batch_size: int = 512, resize: int | None = None,
                channels: int | None = None, progress: Any = None) -> None:
    """Write float32 [N, D] features to an .npy file chunk by chunk: memory stays flat in N.

    The file is written, not memory-mapped, and its full size is reserved once the first chunk
    gives D: a full disk is then an OSError (ENOSPC) before the work, never a SIGBUS mid-way."""
    with open(path, "wb") as f:
        for start, chunk in _batches(net, images, mean, std, device, batch_size, resize, channels):
            if start == 0:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                          "fortran_order": False, "shape": (len(images), chunk.shape[1])}
                np.lib.format.write_array_header_2_0(f, header)
                reserve(f, f.tell() + len(images) * chunk.shape[1] * 4, path)
            f.write(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
            if progress is not None:
                progress.update(len(chunk))


def reserve(f: Any, nbytes: int, path: Path) -> None:
    """Allocate `nbytes` for an open file now, so running out of space fails here."""
    import os

    try:
        os.posix_fallocate(f.fileno(), 0, nbytes)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # a file system without fallocate
            return
        raise OSError(exc.errno, exc.strerror, str(path)) from None


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
