"""LDS stage: the Linear Datamodeling Score of a run's attributions on the 'lds' subset bank
(brittle/eval/lds.py) -> lds.parquet (target, lds) in the run directory, and its summary.

The pipeline trains (or loads) the bank and hands it here; a resumed run reads lds.parquet back
and needs no bank at all (`recorded`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brittle.eval.lds import LinearDatamodelingScore
from brittle.eval.stats import bootstrap_ci
from brittle.runtime.execution import Execution
from brittle.runtime.files import save_parquet
from brittle.stages.bank import Bank

log = logging.getLogger(__name__)

DEPENDS_ON: tuple[str, ...] = ()  # reads no setting: handed the evaluation, its bank and the scores


@dataclass(frozen=True)
class LdsResult:
    """mean LDS over targets, its 95% bootstrap interval, and the fraction of |scores| kept."""
    mean: float
    ci: tuple[float, float]
    sparsify_top: float


def recorded(run_dir: Path) -> np.ndarray | None:
    """The per-target LDS a previous (interrupted) run of this directory wrote, if any."""
    out = Path(run_dir) / "lds.parquet"
    return pd.read_parquet(out)["lds"].to_numpy() if out.exists() else None


def run(ex: Execution, evaluation: LinearDatamodelingScore, bank: Bank | None, targets: np.ndarray,
        attributions: np.ndarray | None, default_sparsity: float) -> LdsResult:
    """Score (or read back) the LDS per target and summarise it."""
    per_target = recorded(ex.run_dir)
    if per_target is None:
        if bank is None or attributions is None:
            raise ValueError("the LDS needs its bank and the scorer's attributions")
        per_target = evaluation.score(bank.masks, bank.margins[:, targets], attributions, default_sparsity)
        save_parquet(ex.run_dir / "lds.parquet", pd.DataFrame({"target": targets, "lds": per_target}))
    fraction = evaluation.fraction(default_sparsity)
    mean, ci = float(per_target.mean()), bootstrap_ci(per_target, np.mean)
    log.info("LDS over %d targets: mean %.3f (95%% CI %.3f..%.3f), top %.0f%% of |scores| kept",
             len(targets), mean, ci[0], ci[1], 100 * fraction)
    return LdsResult(mean, ci, fraction)
