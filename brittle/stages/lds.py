"""LDS stage: the Linear Datamodeling Score of a run's attributions on the 'lds' subset bank
(brittle/eval/lds.py), and beside it the LDS of sign estimation alone (the paper's sign rule
without any method's magnitudes: `sign_alone`) on the same bank and targets -> lds.parquet
(target, lds, sign_alone) in the run directory, and their summary.

The pipeline trains (or loads) the bank and hands it here; a resumed run reads lds.parquet back
and needs no bank at all (`recorded`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from brittle.eval.lds import LinearDatamodelingScore, sign_alone
from brittle.eval.stats import bootstrap_ci
from brittle.runtime.execution import Execution
from brittle.runtime.files import save_parquet
from brittle.runtime.stagetimes import timed_stage
from brittle.stages.bank import Bank

log = logging.getLogger(__name__)

DEPENDS_ON: tuple[str, ...] = ()  # reads no setting: handed the evaluation, its bank and the scores


@dataclass(frozen=True)
class LdsResult:
    """mean LDS over targets, its 95% bootstrap interval, the fraction of |scores| kept, and
    sign estimation alone's mean and interval (None when the run did not record it)."""
    mean: float
    ci: tuple[float, float]
    sparsify_top: float
    sign_alone: float | None = None
    sign_alone_ci: tuple[float, float] | None = None


def recorded(run_dir: Path) -> np.ndarray | None:
    """The per-target LDS a previous (interrupted) run of this directory wrote, if any."""
    out = Path(run_dir) / "lds.parquet"
    return pd.read_parquet(out)["lds"].to_numpy() if out.exists() else None


def recorded_sign_alone(run_dir: Path) -> tuple[float, tuple[float, float]] | None:
    """Sign estimation alone's mean LDS over the run's targets and its 95% bootstrap interval,
    from lds.parquet; None without one (no eval=lds, or written before the column existed)."""
    out = Path(run_dir) / "lds.parquet"
    if not out.exists():
        return None
    frame = pd.read_parquet(out)
    if "sign_alone" not in frame.columns:
        return None
    values = frame["sign_alone"].to_numpy()
    return float(values.mean()), bootstrap_ci(values, np.mean)


@timed_stage("lds")
def run(ex: Execution, evaluation: LinearDatamodelingScore, bank: Bank | None, targets: np.ndarray,
        attributions: np.ndarray | None, default_sparsity: float,
        labels: tuple[Any, Any] | None = None) -> LdsResult:
    """Score (or read back) the LDS per target and summarise it. `labels`: the training labels
    [N] and the test labels [N_test] (arrays or tensors), for sign estimation alone."""
    per_target = recorded(ex.run_dir)
    if per_target is None:
        if bank is None or attributions is None:
            raise ValueError("the LDS needs its bank and the scorer's attributions")
        margins = bank.margins[:, targets]
        per_target = evaluation.score(bank.masks, margins, attributions, default_sparsity)
        frame = pd.DataFrame({"target": targets, "lds": per_target})
        if labels is not None:
            train_y, test_y = (_numpy(y) for y in labels)
            frame["sign_alone"] = sign_alone(bank.masks, margins, train_y, test_y[targets])
        save_parquet(ex.run_dir / "lds.parquet", frame)
    fraction = evaluation.fraction(default_sparsity)
    mean, ci = float(per_target.mean()), bootstrap_ci(per_target, np.mean)
    alone = recorded_sign_alone(ex.run_dir)
    log.info("LDS over %d targets: mean %.3f (95%% CI %.3f..%.3f), top %.0f%% of |scores| kept%s",
             len(targets), mean, ci[0], ci[1], 100 * fraction,
             "" if alone is None else f"; sign estimation alone {alone[0]:.3f}")
    return LdsResult(mean, ci, fraction, *(alone or (None, None)))


def _numpy(labels: Any) -> np.ndarray:
    """Labels as a host array (the engine keeps its training labels on the device)."""
    return labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
