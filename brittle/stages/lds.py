"""LDS stage: the Linear Datamodeling Score of a run's attributions against a subset-model bank.

LDS(z) = Spearman(margins f(z; S_j), sum_{i in S_j} tau_i(z)) over the bank's models j, per
target, where tau are the scorer's signed attributions (brittle/scorers/base.py) sparsified to
their top fraction by magnitude: `eval.sparsify_top`, or the scorer's own `lds_sparsity` when
null (paper: 5% for ESVM, dense for TRAK and Datamodels). Writes lds.parquet (target, lds).

`eval=` options build an evaluation object: `LinearDatamodelingScore` or `NoEvaluation`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from brittle.artifacts import save_parquet
from brittle.errors import BrittleError
from brittle.execution import Execution
from brittle.metrics import bootstrap_ci, lds, sparsify_top
from brittle.retrain.engine import Retrainer
from brittle.stages import bank

log = logging.getLogger(__name__)

DEPENDS_ON = bank.DEPENDS_ON


class NoEvaluation:
    """`eval=none`: nothing beyond the support search."""

    needs_attributions = False

    def evaluate(self, spec: DictConfig, ex: Execution, engine: Retrainer, targets: np.ndarray,
                 attributions: np.ndarray | None, default_sparsity: float) -> dict | None:
        return None


@dataclass(frozen=True)
class LinearDatamodelingScore:
    """`eval=lds`: LDS on `n_models` models trained on random `alpha`-subsets (the 'lds' bank)."""
    n_models: int = 100
    alpha: float = 0.5
    sparsify_top: float | None = None

    needs_attributions = True

    def __post_init__(self) -> None:
        if self.sparsify_top is not None and not 0 < self.sparsify_top <= 1:
            raise BrittleError(f"eval.sparsify_top={self.sparsify_top} is out of range; use 0 < "
                               f"sparsify_top <= 1, or null for the scorer's own")

    def evaluate(self, spec: DictConfig, ex: Execution, engine: Retrainer, targets: np.ndarray,
                 attributions: np.ndarray | None, default_sparsity: float) -> dict | None:
        """{'mean', 'ci', 'sparsify_top'} over targets; per target in lds.parquet."""
        out = ex.run_dir / "lds.parquet"
        fraction = float(self.sparsify_top if self.sparsify_top is not None else default_sparsity)
        if out.exists():
            per_target = pd.read_parquet(out)["lds"].to_numpy()
        else:
            tau = sparsify_top(np.asarray(attributions, dtype=np.float64), fraction)
            models = bank.run(spec, ex, engine, int(self.n_models), float(self.alpha), purpose="lds")
            per_target = lds(models.masks, models.margins[:, targets], tau)
            per_target = np.nan_to_num(per_target, nan=0.0)  # constant predictions carry no signal
            save_parquet(out, pd.DataFrame({"target": targets, "lds": per_target}))
        mean = float(per_target.mean())
        ci = bootstrap_ci(per_target, np.mean)
        log.info("LDS over %d targets: mean %.3f (95%% CI %.3f..%.3f), top %.0f%% of |scores| kept",
                 len(targets), mean, ci[0], ci[1], 100 * fraction)
        return {"mean": mean, "ci": list(ci), "sparsify_top": fraction}
