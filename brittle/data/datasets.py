"""Datasets as uint8 image arrays: the `Dataset`/`ImageSet` records every loader returns, balanced
subsets, normalisation, and the embedded `digits` (scikit-learn's, no download).

Images are uint8 `[N, C, H, W]`, labels int64 `[N]`. CIFAR-10 lives in cifar10.py, any
class-folder tree in imagefolder.py.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from brittle.runtime.errors import BrittleError

log = logging.getLogger(__name__)


if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageSet:
    """images: uint8 [N, C, H, W] (an array, or imagefolder's LazyImages decoding on access);
    labels: int64 [N]; classes: names indexed by label."""
    images: Any
    labels: np.ndarray
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray) -> ImageSet:
        # lazily decoded images (dataset=imagefolder) select files, arrays select rows
        images = self.images.take(index) if hasattr(self.images, "files") else self.images[index]
        return ImageSet(images, self.labels[index], self.classes)


# How a dataset's indices are ordered. "official": the publisher's order (CIFAR-10's python
# batches; digits' fixed split, the only one there is). "class-folder": sorted by class folder,
# then file name. Released weights and explicit target indices are only valid in their own order.
ORDERINGS = ("official", "class-folder")


@dataclass(frozen=True)
class Dataset:
    name: str
    train: ImageSet
    test: ImageSet
    ordering: str = "official"

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def balanced_subset(labels: np.ndarray, n: int | None, seed: int, what: str) -> np.ndarray:
    """Sorted indices of `n` samples, n / C from each class (seeded); all indices when n is None."""
    if n is None:
        return np.arange(len(labels))
    classes = np.unique(labels)
    per_class, extra = divmod(int(n), len(classes))
    if n < len(classes):
        raise BrittleError(f"{what}={n} is smaller than the number of classes ({len(classes)}); "
                           f"use at least {len(classes)} or null for all")
    rng = np.random.default_rng(seed)
    chosen = []
    for i, c in enumerate(classes):
        pool = np.flatnonzero(labels == c)
        take = per_class + (1 if i < extra else 0)
        if take > len(pool):
            raise BrittleError(f"{what}={n} asks {take} samples of class {c}, which has only "
                               f"{len(pool)}; use at most {len(pool) * len(classes)}")
        chosen.append(rng.choice(pool, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def apply_subsets(name: str, train: ImageSet, test: ImageSet, train_subset: int | None,
                   test_subset: int | None, seed: int, ordering: str = "official") -> Dataset:
    train = train.subset(balanced_subset(train.labels, train_subset, seed, "dataset.train_subset"))
    test = test.subset(balanced_subset(test.labels, test_subset, seed + 1, "dataset.test_subset"))
    return Dataset(name, train, test, ordering)


def normalized(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 [B, C, H, W] -> float32 [B, C, H, W], scaled to [0, 1] then standardised per
    channel."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def load_digits(test_fraction: float = 0.2, split_seed: int = 0, train_subset: int | None = None,
                test_subset: int | None = None, subset_seed: int = 0, **_: object) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, a fixed stratified split, pixels scaled 0..16 -> 0..255."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           stratify=labels, random_state=split_seed)
    classes = [str(c) for c in range(10)]
    train = ImageSet(images[np.sort(idx_train)], labels[np.sort(idx_train)], classes)
    test = ImageSet(images[np.sort(idx_test)], labels[np.sort(idx_test)], classes)
    return apply_subsets("digits", train, test, train_subset, test_subset, subset_seed)


def default_cache_dir() -> str:
    return os.environ.get("BRITTLE_CACHE", ".cache/brittle")
