"""Embed stage: features of every train and test image, from the backbone's output or, with
`backbone.features=projection`, from the pretraining method's projection head after it.

Writes `train.npy` float32 [N_train, D] and `test.npy` float32 [N_test, D] into the stage cache,
and records a label-free sanity figure: the kNN accuracy of test features against train features.
Its key is the pretrain stage's key plus the whole dataset (test images too), the
normalisation features are taken with, and the embedding layer when it is not the default (the
backbone's output: brittle/runtime/defaults.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from brittle.data.datasets import Dataset
from brittle.runtime.cache import StageCache
from brittle.runtime.defaults import without_defaults
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import Execution, plain
from brittle.runtime.faults import require_space
from brittle.runtime.progress import Progress
from brittle.runtime.stagetimes import timed_stage
from brittle.scorers.base import validate_features
from brittle.ssl.checkpoints import load_backbone_weights
from brittle.ssl.features import (
    HEAD_FILE,
    Projected,
    features_setting,
    features_to,
    knn_accuracy,
    method_head,
    projection_dim,
)
from brittle.ssl.networks import feature_dim
from brittle.stages import pretrain
from brittle.stages.keys import key_of

log = logging.getLogger(__name__)

# backbone.features: declared through "backbone"; the pretrain stage excludes it
DEPENDS_ON = (*pretrain.DEPENDS_ON, "dataset.loader.test_subset")


@dataclass(frozen=True)
class Embeddings:
    """train: float32 [N_train, D]; test: float32 [N_test, D]; knn_accuracy on test."""
    train: np.ndarray
    test: np.ndarray
    knn_accuracy: float
    directory: Path
    seconds: float  # pretraining + embedding time, as recorded when they were computed
    images_per_second: float  # embedding throughput


def key(cfg: DictConfig) -> dict:
    """The pretrain key of the same slice, plus the test split, the normalisation and, unless it
    is the backbone's output, the embedding layer."""
    norm = cfg.backbone.get("normalize") or cfg.dataset.normalize
    trained = plain(cfg)   # what the backbone was trained with: the slice less the features
    trained["backbone"] = {k: v for k, v in trained["backbone"].items() if k != "features"}
    out = {"pretrain": pretrain.key(OmegaConf.create(trained)),
           "dataset": key_of(cfg.dataset.loader), "normalize": key_of(norm)}
    return {**out, **without_defaults({"features": cfg.backbone.features}, "backbone.")}


def _extractor(bcfg: DictConfig, backbone_dir: Path | None) -> tuple[nn.Module, int]:
    """The network that embeds (backbone, or backbone + projection head) and its feature width;
    without `backbone_dir`, untrained (to size the output before pretraining)."""
    net = instantiate(bcfg.net)
    if backbone_dir is not None:
        net = load_backbone_weights(net, backbone_dir / "backbone.pt")
    if features_setting(bcfg) == "backbone":
        return net, feature_dim(net)
    head = method_head(bcfg, net)
    if backbone_dir is not None:
        if not (backbone_dir / HEAD_FILE).is_file():
            raise BrittleError(f"backbone.features=projection needs the projection head saved "
                               f"with the pretrained backbone; {backbone_dir} has none (pretrained "
                               f"without it); delete that directory to pretrain again, or use "
                               f"backbone.features=backbone")
        head = load_backbone_weights(head, backbone_dir / HEAD_FILE)
    return Projected(net, head), projection_dim(head, feature_dim(net))


def check_space(cfg: DictConfig, ex: Execution, data: Dataset) -> None:
    """Refuse, before pretraining, embeddings the cache's file system cannot hold
    ((N_train + N_test) x D x 4 bytes)."""
    if ex.cache.lookup("embed", key(cfg)) is not None:
        return
    dim = _extractor(cfg.backbone, None)[1]   # a bad backbone.features fails here, not after
    need = (len(data.train) + len(data.test)) * dim * 4
    require_space(ex.cache.root, need,
                  f"embedding {len(data.train) + len(data.test)} images x {dim} floats")


@timed_stage("embed")
def run(cfg: DictConfig, ex: Execution, data: Dataset, backbone_dir: Path) -> Embeddings:
    """Embed train and test images with the pretrained backbone in `backbone_dir` (cached)."""
    bcfg = cfg.backbone
    fresh: list[bool] = []

    def compute(tmp: Path) -> dict:
        net = _extractor(bcfg, backbone_dir)[0]
        norm = bcfg.get("normalize") or cfg.dataset.normalize
        mean, std = list(norm.mean), list(norm.std)
        opts = {"resize": bcfg.get("resize"), "channels": bcfg.get("in_channels")}
        start = time.perf_counter()
        total = len(data.train) + len(data.test)
        with Progress(total, "embed", ex.progress, unit="img") as bar:
            for name, images in (("train", data.train.images), ("test", data.test.images)):
                features_to(tmp / f"{name}.npy", net, images, mean, std, ex.device, progress=bar,
                            **opts)
        seconds = time.perf_counter() - start
        train = np.load(tmp / "train.npy", mmap_mode="r")
        test = np.load(tmp / "test.npy", mmap_mode="r")
        _check_finite(train, test)
        fresh.append(True)
        acc = knn_accuracy(train, data.train.labels, test, data.test.labels)
        n = len(train) + len(test)
        log.info("embedded %d images (%d-d) in %.1f s; kNN accuracy %.3f", n, train.shape[1],
                 seconds, acc)
        return {"seconds": seconds, "images_per_second": n / max(seconds, 1e-9),
                "knn_accuracy": acc}

    out = ex.cache.get_or_compute("embed", key(cfg), compute)
    meta = StageCache.meta(out)
    seconds = (float(meta.get("seconds", 0.0))
               + float(StageCache.meta(backbone_dir).get("seconds", 0.0)))
    # memory-mapped: an ImageNet-sized train set is read on demand, not loaded
    train = np.load(out / "train.npy", mmap_mode="r")
    test = np.load(out / "test.npy", mmap_mode="r")
    if not fresh:  # read from the cache: checked as if computed (a damaged or edited entry)
        _check_finite(train, test)
    return Embeddings(train, test, float(meta["knn_accuracy"]), out, seconds,
                      float(meta.get("images_per_second", 0.0)))


def _check_finite(train: np.ndarray, test: np.ndarray) -> None:
    """The one finiteness check of a run's features (a diverged pretraining gives NaN)."""
    validate_features("train", train)
    validate_features("test", test)
