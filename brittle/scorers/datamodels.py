"""Datamodels scorer (Ilyas et al.): per-target linear models of the margin on training masks.

Either fitted here on the subset-model bank (masks [m, N] -> target margins), with an L1
penalty chosen on held-out models, or loaded from released weights: a `.pt` file holding
`weight` [N_train, N_test] (as MadryLab publishes for CIFAR-10). Training images are ranked by
their weight, largest first: removing them lowers the target's margin the most.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brittle.runtime.errors import BrittleError
from brittle.scorers.base import (
    Cost,
    ModelRequest,
    Scorer,
    ScorerModels,
    TargetSet,
    TrainSet,
    check_pool,
)

log = logging.getLogger(__name__)


def fit_datamodel(masks: np.ndarray, margins: np.ndarray, n_alphas: int = 12,
                  val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Lasso weights [N] (and bias) for margins [m] on masks [m, N]; the penalty is the one
    with the lowest squared error on held-out models, then refitted on all of them."""
    from sklearn.linear_model import Lasso, lasso_path

    x = masks.astype(np.float64)
    y = margins.astype(np.float64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(val_fraction * len(y))))
    val, fit = order[:n_val], order[n_val:]
    mu_x, mu_y = x[fit].mean(0), y[fit].mean()
    xc, yc = x[fit] - mu_x, y[fit] - mu_y
    top = max(float(np.abs(xc.T @ yc).max()) / len(yc), 1e-12)
    grid = np.geomspace(top, top * 1e-3, n_alphas)
    alphas, coefs, _ = lasso_path(xc, yc, alphas=grid)
    pred = (x[val] - mu_x) @ coefs + mu_y                      # [n_val, n_alphas]
    err = ((pred - y[val, None]) ** 2).mean(0)
    best = float(alphas[int(np.argmin(err))])
    model = Lasso(alpha=best, max_iter=5000).fit(x, y)
    return model.coef_, float(model.intercept_), best


class Datamodels(Scorer):
    """Rank by datamodel weights, fitted on a bank of `n_models` alpha-subset models or loaded.
    The paper's protocol ranks every training image (`pool: all`)."""

    method = "Datamodels"
    needs_features = False
    signed_by_label = False
    paper_pool = "all"

    def __init__(self, n_models: int = 200, alpha: float = 0.5, weights: str | None = None,
                 pool: str = "all", seed: int = 0, lds_sparsity: float = 1.0):
        self.n_models, self.alpha, self.weights = int(n_models), float(alpha), weights
        self.pool, self.seed = check_pool(pool), int(seed)
        self.lds_sparsity = float(lds_sparsity)
        self._bank: Any = None  # brittle.stages.bank.Bank, handed over by the pipeline
        self._released: np.ndarray | None = None
        self._cost = Cost()

    def models_needed(self) -> ModelRequest | None:
        """A subset bank to fit on, unless released weights are given."""
        if self.weights is not None:
            return None
        return ModelRequest("datamodels", self.n_models, self.alpha, bank=True)

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        super().prepare(train, models, device)
        if self.weights is not None:
            if train.ordering != "official":
                raise BrittleError(
                    f"scorer.weights={self.weights} are in the official dataset order, but the "
                    f"dataset was loaded in the {train.ordering} order; give the CIFAR-10 python "
                    f"batches (cifar-10-batches-py) as dataset.root")
            n_test_images = models.engine.test_x.shape[0] if models is not None else None
            self._released = load_released_weights(Path(self.weights), len(train.labels),
                                                   n_test_images)
            self._cost = Cost(0, 0.0, int(self._released.nbytes))  # the publisher's bank: unknown
            return
        if models is None or models.bank is None:
            raise BrittleError("scorer=datamodels trains models: run it through the pipeline")
        self._bank = models.bank
        self._cost = Cost(self.n_models, self._bank.seconds,
                          int(self._bank.masks.nbytes + self._bank.margins.nbytes))

    def scores(self, targets: TargetSet) -> np.ndarray:
        """Datamodel weights float64 [T, N_train] of the targets' test images."""
        ids = np.asarray(targets.ids)
        if self._released is not None:
            return self._released[:, ids].T.astype(np.float64)
        out = []
        for t in ids:
            coef, _, alpha = fit_datamodel(self._bank.masks, self._bank.margins[:, t],
                                           seed=self.seed)
            log.debug("datamodel for test #%d: alpha %.3g, %d non-zero", t, alpha,
                      int((coef != 0).sum()))
            out.append(coef)
        return np.stack(out) if out else np.zeros((0, len(self.train.labels)))

    def cost(self) -> Cost:
        return self._cost


def load_released_weights(path: Path, n_train: int, n_test_images: int | None) -> np.ndarray:
    """`weight` [N_train, N_test] from a released datamodels `.pt` file, checked against the
    data."""
    from brittle.runtime.files import read_torch_file

    if not path.is_file():
        raise BrittleError(f"scorer.weights={path} does not exist (or is not a file); give a .pt "
                           "file with a 'weight' tensor [n_train, n_test_images]")
    blob = read_torch_file(path, "scorer.weights",
                           "a .pt file with a 'weight' tensor [n_train, n_test_images]")
    weight = blob.get("weight") if isinstance(blob, dict) else None
    if weight is None:
        raise BrittleError(f"scorer.weights={path} has no 'weight' entry (keys: "
                           f"{sorted(blob) if isinstance(blob, dict) else type(blob).__name__})")
    weight = np.asarray(weight, dtype=np.float32)
    if weight.shape[0] != n_train or (n_test_images is not None
                                      and weight.shape[1] != n_test_images):
        raise BrittleError(f"scorer.weights={path} has weight of shape {weight.shape}, but the "
                           f"dataset has {n_train} train and {n_test_images} test images")
    return weight
