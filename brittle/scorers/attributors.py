"""dattri's attribution methods as scorers (`scorer=dattri scorer.method=...`).

dattri (TRAIS-Lab, `pip install 'brittle[dattri]'`) implements TracIn, influence functions and
TRAK over a model's checkpoints. brittle hands it the checkpoints of `n_models` classifiers of
the retraining arch (or `source_arch`) trained on the full data by the models stage (cached), a
cross-entropy loss on the normalised images, and unshuffled loaders of the training images and
the targets. dattri returns influence [N_train, T] with larger = the training image lowers the
target's loss more (a proponent); brittle uses it as the scores and as the signed LDS scores
(tests/scorers/test_dattri.py checks the direction by retraining).

Supported methods and what each computes here:
  tracin      TracIn's sum over checkpoints of projected gradient dot products (weights 1: the
              checkpoints are independent final models, not one run's trajectory)
  grad-dot    the same with one checkpoint; grad-cos: normalised gradients
  if-cg       influence functions, inverse Hessian-vector products by conjugate gradients
  if-arnoldi  influence functions, Arnoldi's top eigenspace of the Hessian
  if-ekfac    influence functions, EK-FAC (dattri supports one checkpoint: the first)
  trak        dattri's TRAK (projected gradients, ensemble over checkpoints)
Not offered, with the reason, in `UNSUPPORTED`.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

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

METHODS = {"tracin": "TracIn", "grad-dot": "Grad-Dot", "grad-cos": "Grad-Cos", "if-cg": "IF (CG)",
           "if-arnoldi": "IF (Arnoldi)", "if-ekfac": "IF (EK-FAC)", "trak": "TRAK"}
UNSUPPORTED = {
    "if-explicit": "dattri 0.3's explicit Hessian does not finish in minutes even restricted "
                   "to the digits MLP's last layer (2,570 parameters), where if-cg scores all "
                   "19,210 in seconds",
    "if-datainf": "dattri 0.3's DataInf does not finish in minutes on the digits MLP's last "
                  "layer, where if-cg scores every parameter in seconds",
    "if-lissa": "dattri 0.3's LiSSA samples its Hessian batches with a float index "
                "tensor and fails (RuntimeError: gather() expects int64)",
    "rps": "RPS fine-tunes the last layer on the model's own predicted labels through a "
           "loss of another signature, and scores the penultimate features: brittle's archs do not "
           "expose them to it",
    "logra": "LoGra calls the loss as loss(model, batch, device) and hooks named linear "
             "layers of a language-model layout; brittle's loss and archs follow dattri's "
             "functional convention",
}
SINGLE_CHECKPOINT = ("grad-dot", "grad-cos", "if-ekfac")


def _require_dattri() -> Any:
    try:
        import dattri.algorithm as algorithms
    except ImportError as exc:
        raise BrittleError("scorer=dattri needs the dattri package, brittle's dattri extra: "
                           "pip install 'brittle[dattri]'") from exc
    return algorithms


class Dattri(Scorer):
    """One of dattri's attributors on the cached full-data models; signed, not class-filtered."""

    method = "dattri"
    needs_features = False
    signed_by_label = False
    paper_pool = "all"

    def __init__(self, method: str = "tracin", n_models: int = 3, batch_size: int = 256,
                 regularization: float = 0.01, proj_dim: int = 512, seed: int = 0,
                 pool: str = "all", lds_sparsity: float = 1.0):
        if method in UNSUPPORTED:
            raise BrittleError(f"scorer.method={method} is not supported: {UNSUPPORTED[method]}; "
                               f"use one of {sorted(METHODS)}")
        if method not in METHODS:
            raise BrittleError(f"scorer.method={method} is not valid; use one of {sorted(METHODS)}")
        if n_models < 1:
            raise BrittleError(f"scorer.n_models={n_models} is out of range; use 1 or more")
        self.name = method
        self.n_models = 1 if method in SINGLE_CHECKPOINT else int(n_models)
        self.batch_size, self.regularization = int(batch_size), float(regularization)
        self.proj_dim, self.seed = int(proj_dim), int(seed)
        self.pool, self.lds_sparsity = check_pool(pool), float(lds_sparsity)

    def models_needed(self) -> ModelRequest:
        return ModelRequest("dattri", self.n_models, 1.0)

    def prepare(self, train: TrainSet, models: ScorerModels | None, device: torch.device) -> None:
        super().prepare(train, models, device)
        _require_dattri()
        if models is None or len(models.states) != self.n_models:
            raise BrittleError("scorer=dattri trains its models: run it through the pipeline")
        self._engine, self._states, self._seconds = models.engine, models.states, models.seconds
        # dattri's disk caches (its block-projected attributors write batch metadata into their
        # cache_dir, the working directory when none is given) go to the run directory's scratch
        self._scratch = Path(tempfile.mkdtemp(prefix="dattri-", dir=models.work_dir))
        weakref.finalize(self, shutil.rmtree, self._scratch, True)

    def scores(self, targets: TargetSet) -> np.ndarray:
        """dattri's influence of each training image on each target, float64 [T, N_train]."""
        from dattri.task import AttributionTask

        engine = self._engine
        net = engine.build().to(engine.train_x.device).eval()
        loss = _cross_entropy(net, engine.train_x.dim() - 1)
        ids = torch.as_tensor(np.asarray(targets.ids), device=engine.train_x.device)
        test_y = torch.as_tensor(engine.test_y[np.asarray(targets.ids)],
                                 device=engine.train_x.device)
        train = DataLoader(TensorDataset(engine.train_x, engine.train_y),
                           batch_size=self.batch_size, shuffle=False)
        test = DataLoader(TensorDataset(engine.test_x[ids], test_y), batch_size=self.batch_size,
                          shuffle=False)
        states = self._states[0] if self.n_models == 1 else list(self._states)
        if self.name == "trak":   # TRAK's output function: the margin log p / (1 - p), as its paper
            loss = _margin(net, engine.train_x.dim() - 1)
        task = AttributionTask(loss_func=loss, model=net, checkpoints=states)
        attributor = self._attributor(task, net, str(engine.train_x.device))
        # projections and samplers seeded, the run's RNG untouched; dattri's own bars off
        # (brittle's run)
        with torch.random.fork_rng(devices=[]), _quiet_tqdm():
            torch.manual_seed(self.seed)
            if self.name not in ("tracin", "grad-dot", "grad-cos"):
                attributor.cache(train)
            scores = (attributor.attribute(test) if self.name == "trak"
                      else attributor.attribute(train, test))
        out = scores.detach().double().cpu().numpy().T
        bad = int((~np.isfinite(out)).any(axis=1).sum())
        if bad:
            raise BrittleError(f"dattri's {self.name} returned NaN or inf scores for {bad} "
                               f"targets; raise scorer.regularization (now {self.regularization})")
        return out

    def _attributor(self, task: Any, net: torch.nn.Module, device: str) -> Any:
        algorithms = _require_dattri()
        projector = {"proj_dim": self.proj_dim, "device": device, "proj_seed": self.seed}
        reg, common = self.regularization, {"task": task, "device": device}
        if self.name in ("tracin", "grad-dot", "grad-cos"):
            return in_scratch(algorithms.TracInAttributor, self._scratch, **common,
                              weight_list=torch.ones(self.n_models), projector_kwargs=projector,
                              normalized_grad=self.name == "grad-cos")
        if self.name == "trak":
            return in_scratch(algorithms.TRAKAttributor, self._scratch, **common,
                              correct_probability_func=_correct_probability(net),
                              projector_kwargs=projector, regularization=reg)
        if self.name == "if-cg":
            return in_scratch(algorithms.IFAttributorCG, self._scratch, **common,
                              regularization=reg, max_iter=10)
        if self.name == "if-arnoldi":
            # a Krylov space of twice the kept eigenvectors: shorter ones broke down (NaN) on
            # digits MLPs
            kept = min(self.proj_dim, 50)
            return in_scratch(algorithms.IFAttributorArnoldi, self._scratch, **common,
                              regularization=reg, proj_dim=kept, max_iter=2 * kept, seed=self.seed)
        return in_scratch(algorithms.IFAttributorEKFAC, self._scratch, **common, damping=reg)

    def display_name(self, backbone: str | None) -> str:
        """e.g. 'TracIn (dattri)', 'IF (CG) (dattri)'."""
        return f"{METHODS[self.name]} (dattri)" + self._protocol_suffix()

    def cost(self) -> Cost:
        size = sum(v.numel() * v.element_size() for state in self._states for v in state.values())
        return Cost(self.n_models, self._seconds, int(size))


def in_scratch(cls: Callable[..., Any], scratch: Path, **kwargs: Any) -> Any:
    """cls(**kwargs), with `cache_dir=scratch` when cls takes one: dattri's attributors that cache
    to disk (block-projected influence, LoGra, FactGraSS) default to the working directory."""
    if "cache_dir" in inspect.signature(cls).parameters:
        kwargs["cache_dir"] = str(scratch)
    return cls(**kwargs)


@contextlib.contextmanager
def _quiet_tqdm() -> Iterator[None]:
    """tqdm reads TQDM_* variables as defaults: dattri's progress bars stay off inside a run."""
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def _cross_entropy(net: torch.nn.Module, sample_dims: int) -> Callable:
    """dattri's loss(params, data): cross-entropy of one sample (vmapped) or of a batch."""
    def loss(params: dict, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = data
        single = x.dim() == sample_dims
        logits = torch.func.functional_call(net, params, (x.unsqueeze(0) if single else x,))
        return F.cross_entropy(logits, y.reshape(-1))
    return loss


def _margin(net: torch.nn.Module, sample_dims: int) -> Callable:
    """TRAK's model output of a sample: log p(correct) - log(1 - p(correct)) (summed over a
    batch)."""
    def margin(params: dict, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = data
        single = x.dim() == sample_dims
        logits = torch.func.functional_call(net, params, (x.unsqueeze(0) if single else x,))
        logp = -F.cross_entropy(logits, y.reshape(-1), reduction="none")
        return (logp - torch.log1p(-torch.exp(logp).clamp_max(1 - 1e-7))).sum()
    return margin


def _correct_probability(net: torch.nn.Module) -> Callable:
    """TRAK's p(correct) of one sample (dattri's signature)."""
    def prob(params: dict, image_label_pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = image_label_pair
        logits = torch.func.functional_call(net, params, (x.unsqueeze(0),))
        return torch.softmax(logits, dim=-1)[0, y.reshape(())]
    return prob
