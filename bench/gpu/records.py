"""What a finished run directory says of itself, read from the run's own records (nothing timed
from outside): summary.json's seconds and models trained of each stage (brittle/runtime/
stagetimes.py), the device, the AUC and models, and support.parquet's supports.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def run_figures(run_dir: Path) -> dict[str, Any]:
    """A run's stage seconds and models, device, AUC with its interval, targets and models, and
    its scorer's cost."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    keys = ("stage_seconds", "models_trained", "device", "auc", "auc_ci", "n_targets",
            "n_flipped", "search_models", "reference_accuracy", "score_cost")
    return {**{k: summary[k] for k in keys}, "method": summary["names"]["method"]}


def supports(run_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(targets, supports, K) of a run: support -1 or > K is a target not flipped within K."""
    import pandas as pd
    table = pd.read_parquet(Path(run_dir) / "support.parquet")
    k = int(json.loads((Path(run_dir) / "summary.json").read_text())["max_support"])
    return table["target"].to_numpy(), table["support"].to_numpy(), k


def auc_terms(support: np.ndarray, k: int) -> np.ndarray:
    """Each target's share of the AUC, (K - support) / K, 0 when not flipped within K: the AUC is
    their mean (brittle/counterfactual/metrics.py)."""
    s = np.asarray(support, dtype=np.float64)
    return np.where((s >= 0) & (s <= k), (k - s) / k, 0.0)


def short(stages: dict[str, float]) -> str:
    """Stage seconds on one line: 'data 11.0 s, pretrain 70.2 s, ...'."""
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())
