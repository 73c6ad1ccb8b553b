"""Score stage: rank training images per target -> topk.npy int64 [T, K] and score_cost.json in
the run directory; with `score.save_scores` (always when LDS is evaluated) also the scorer's
signed attributions -> scores.npy float32 [T, N_train] (dense; LDS sparsifies them).

The scorer is prepared once (features, or trained models), then targets are scored in chunks of
`score.chunk`; both the ranking and the attributions come from one scores matrix per chunk.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from brittle.counterfactual.rankings import rank_from_scores
from brittle.runtime.costs import Meter
from brittle.runtime.execution import Execution
from brittle.runtime.files import load_npy, save_json, save_npy
from brittle.runtime.progress import Progress
from brittle.runtime.stagetimes import timed_stage
from brittle.scorers.base import Scorer, ScorerModels, TargetSet, TrainSet

log = logging.getLogger(__name__)

DEPENDS_ON = ("scorer", "score", "search.max_support")


@dataclass(frozen=True)
class Scored:
    """topk int64 [T, K]; cost: the score_cost.json record; attributions float32 [T, N] or None."""
    topk: np.ndarray
    cost: dict[str, Any]
    attributions: np.ndarray | None


@timed_stage("score")
def run(cfg: DictConfig, ex: Execution, scorer: Scorer, train: TrainSet, targets: TargetSet,
        models: ScorerModels | None, features: Any, want_attributions: bool) -> Scored:
    """Rank (and attribute) the targets; reuses the run directory's files when they exist. The
    pipeline has checked the pools against K, and the embed stage the features' finiteness."""
    k = int(cfg.search.max_support)
    want = wants_scores(cfg, want_attributions)
    paths = _paths(ex.run_dir)
    done = recorded(ex.run_dir, want)
    if done is not None:
        return done
    chunk = int(cfg.score.chunk)
    topk, kept = [], []
    with Meter() as meter, Progress(len(targets.ids), "score", ex.progress, unit="target") as bar:
        scorer.prepare(train, models, ex.device)
        for lo in range(0, len(targets.ids), chunk):
            part = TargetSet(targets.ids[lo:lo + chunk], targets.labels[lo:lo + chunk],
                           None if targets.features is None else targets.features[lo:lo + chunk])
            scores = scorer.scores(part)
            topk.append(rank_from_scores(scorer.pool_scores(scores, part), k))
            if want:
                kept.append(scorer.attributions(scores, part).astype(np.float32))
            bar.update(len(part.ids))
    topk_arr = np.concatenate(topk)
    cost = _cost_record(scorer, topk_arr, features, meter, len(targets.ids))
    log.info("scored %d targets in %.2f s (%.3f s per target)%s", len(targets.ids), meter.seconds,
             cost["seconds_per_target"],
             f"; {cost['not_converged']} solves did not converge" if cost["not_converged"] else "")
    attributions = np.concatenate(kept) if want else None
    if attributions is not None:
        save_npy(paths["scores"], attributions)
    save_npy(paths["topk"], topk_arr)
    save_json(paths["cost"], cost)
    return Scored(topk_arr, cost, attributions)


def wants_scores(cfg: DictConfig, want_attributions: bool) -> bool:
    """Whether scoring writes the attributions (scores.npy): for the LDS, or when asked to."""
    return want_attributions or bool(cfg.score.save_scores)


def _paths(run_dir: Path) -> dict[str, Path]:
    return {"topk": run_dir / "topk.npy", "cost": run_dir / "score_cost.json",
            "scores": run_dir / "scores.npy"}


def recorded(run_dir: Path, want: bool) -> Scored | None:
    """This run's scoring as written before (with attributions when `want`), or None when a file
    is missing or damaged."""
    paths = _paths(run_dir)
    topk, scores = load_npy(paths["topk"]), load_npy(paths["scores"]) if want else None
    if topk is None or (want and scores is None) or not paths["cost"].exists():
        return None
    try:
        return Scored(topk, json.loads(paths["cost"].read_text()), scores)
    except ValueError:
        return None


def _cost_record(scorer: Scorer, topk: np.ndarray, features: Any, meter: Meter,
                 n_targets: int) -> dict:
    """What scoring cost: time, memory, models and their training time, bytes kept, solver
    health."""
    own = scorer.cost()
    feature_bytes = features.train.nbytes if features is not None else 0
    return {"seconds": meter.seconds, "seconds_per_target": meter.seconds / max(n_targets, 1),
            "peak_bytes": int(meter.peak_bytes), "cuda_peak_bytes": int(meter.cuda_peak_bytes),
            # what a user must keep to score new targets: features or the method's own state
            "bytes_stored": int(topk.nbytes + feature_bytes + own.bytes_stored),
            "embed_images_per_second": features.images_per_second if features is not None else None,
            # training of the models the method needs (cached stages count once, when built)
            "models_seconds": (float(own.models_seconds)
                               + (features.seconds if features is not None else 0.0)),
            "n_models": int(own.n_models),
            "not_converged": int(scorer.not_converged),
            "solver_fallbacks": int(scorer.fallbacks)}
