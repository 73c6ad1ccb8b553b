"""LDS stage: the Linear Datamodeling Score of a run's scores against a subset-model bank.

LDS(z) = Spearman(margins f(z; S_j), sum_{i in S_j} tau_i(z)) over the bank's models j, per target,
with tau sparsified to its top fraction by magnitude; writes lds.parquet (target, lds).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from brittle.artifacts import save_parquet
from brittle.bank import subset_bank
from brittle.metrics import lds, sparsify_top

log = logging.getLogger(__name__)


def stage_lds(cfg: DictConfig, run_dir: Path, engine: Any, cache: Any, targets: np.ndarray) -> float | None:
    """Mean LDS over targets (None when eval is not lds); reads scores.npy of the score stage."""
    ecfg = cfg.get("eval")
    if ecfg is None or ecfg.get("name") != "lds":
        return None
    out = run_dir / "lds.parquet"
    if out.exists():
        return float(pd.read_parquet(out)["lds"].mean())
    scores = np.load(run_dir / "scores.npy").astype(np.float64)
    scores = sparsify_top(scores, float(ecfg.sparsify_top))
    bank = subset_bank(cfg, engine, cache, int(ecfg.n_models), float(ecfg.alpha), purpose="lds")
    per_target = lds(bank.masks, bank.margins[:, targets], scores)
    per_target = np.nan_to_num(per_target, nan=0.0)  # constant predictions carry no signal
    save_parquet(out, pd.DataFrame({"target": targets, "lds": per_target}))
    log.info("LDS over %d targets: mean %.3f", len(targets), float(per_target.mean()))
    return float(per_target.mean())
