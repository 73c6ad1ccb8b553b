"""Pretraining's Lightning logger: what the methods log each epoch (`train_loss`, `knn_accuracy`:
brittle/ssl/methods.py) forwarded to the run's tracker (brittle/runtime/tracking.py) as
`pretrain/loss` and `pretrain/knn_accuracy`, at step = the epoch (1-based, as curve.csv).

Every call goes through the tracker's guard, so a failing tracker never stops a fit. Lightning's
other calls (hyperparameters, graph, finalize) are left out: the tracker logs the run's whole
config and ends its tracked run when the run ends, not when the fit does.
"""
from __future__ import annotations

from argparse import Namespace
from typing import Any

from pytorch_lightning.loggers import Logger

from brittle.runtime.tracking import Tracker

NAMES = {"train_loss": "pretrain/loss", "knn_accuracy": "pretrain/knn_accuracy"}


class PretrainLogger(Logger):
    """Lightning's epoch metrics -> `tracker.log`; `module.epoch_losses` counts the epochs done
    (a resumed fit included)."""

    def __init__(self, tracker: Tracker, module: Any):
        super().__init__()
        self.tracker, self.module = tracker, module

    @property
    def name(self) -> str:
        return "pretrain"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        named = {NAMES.get(k, f"pretrain/{k}"): v for k, v in metrics.items() if k != "epoch"}
        self.tracker.log(named, step=len(self.module.epoch_losses))

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any,
                        **kwargs: Any) -> None:
        """The tracker logs the run's composed config itself."""


def pretrain_logger(tracker: Tracker | None, module: Any) -> PretrainLogger | bool:
    """The logger a pretraining Trainer gets: False (Lightning's "none") unless a tracker is on."""
    return PretrainLogger(tracker, module) if tracker is not None and tracker.enabled else False
