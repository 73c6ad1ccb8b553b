"""Training-set modifications of the two tasks, as index masks and label overrides (no image copy).

`apply(labels, prefix, flip_class)` returns the training indices to keep (int64 [N_keep]) and the
labels to train with (int64 [N]); images are never copied, the trainer gathers batches by index.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

# torch is imported where a task is applied: choosing one on the command line needs none
if TYPE_CHECKING:
    import torch


class Task(ABC):
    """A `task=` option: how a ranking's prefix modifies the training set of a counterfactual
    test."""

    name: ClassVar[str]
    needs_flip_class: ClassVar[bool]

    @abstractmethod
    def apply(self, labels: torch.Tensor, prefix: np.ndarray, flip_class: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(training indices to keep int64 [N_keep], labels to train with int64 [N])."""


class Remove(Task):
    """Task `remove`: the prefix of the ranking is dropped from the training set."""

    needs_flip_class = False
    name = "remove"

    def apply(self, labels: torch.Tensor, prefix: np.ndarray, flip_class: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        keep = torch.ones(labels.shape[0], dtype=torch.bool, device=labels.device)
        keep[torch.as_tensor(prefix, dtype=torch.long, device=labels.device)] = False
        return keep.nonzero().squeeze(1), labels


class Mislabel(Task):
    """Task `mislabel`: the prefix is relabelled to the target's flip class; nothing is dropped."""

    needs_flip_class = True
    name = "mislabel"

    def apply(self, labels: torch.Tensor, prefix: np.ndarray, flip_class: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        if flip_class is None:
            raise ValueError("mislabel needs the target's flip class")
        import torch

        keep = torch.arange(labels.shape[0], device=labels.device)
        if len(prefix) == 0:
            return keep, labels
        new = labels.clone()
        new[torch.as_tensor(prefix, dtype=torch.long, device=labels.device)] = int(flip_class)
        return keep, new


def flip_classes(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each target's flip class: the second class by average rank over the reference models (the
    reference code's rule; probs float [R, T, C] or one model's [T, C], labels [T]); the first one
    when the second is the true label. Ranks count from 0 (most likely); ties in class order."""
    probs = np.asarray(probs)
    if probs.ndim == 2:
        probs = probs[None]
    ranks = np.argsort(np.argsort(-probs, axis=2, kind="stable"), axis=2, kind="stable")
    order = np.argsort(ranks.mean(0), axis=1, kind="stable")
    second, first = order[:, 1], order[:, 0]
    return np.where(second == labels, first, second).astype(np.int64)
