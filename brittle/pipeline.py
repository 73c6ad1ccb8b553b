"""A brittleness run: the stages of brittle/stages/, in order, each handed only its config subset.

data -> reference (cache) -> targets -> pretrain (cache) -> embed (cache) -> score -> lds ->
search -> summarize. Cheap stages and checks come first, so bad settings fail before pretraining.
Cached stages live in `cache_dir`, keyed by their subset; the others write into the run
directory, which is bound to the run's identity (`run_spec.json`) so a rerun resumes it.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from brittle.artifacts import check_run_dir
from brittle.execution import execution_of, run_identity
from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON
from brittle.retrain.engine import Retrainer
from brittle.scorers.base import Queries, Scorer, TrainSet, check_pool_sizes
from brittle.stages import data, embed, lds, models, pretrain, reference, score, search, summarize, targets
from brittle.stages.spec import key_of, select

log = logging.getLogger(__name__)


def _on(cfg: DictConfig, stage: Any) -> DictConfig:
    """The subset of cfg that `stage` declared (its DEPENDS_ON minus its EXCLUDES)."""
    return select(cfg, stage.DEPENDS_ON, getattr(stage, "EXCLUDES", ()))


def run(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict:
    """Run (or resume) every stage; returns the summary dict also written to summary.json."""
    ex = execution_of(cfg, run_dir)  # a bad device fails now, not after pretraining
    scorer: Scorer = instantiate(cfg.scorer)
    task, search_obj, evaluation = instantiate(cfg.task), instantiate(cfg.search), instantiate(cfg.eval)
    ex.run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(ex.run_dir, run_identity(cfg))
    dataset = data.run(_on(cfg, data), ex)
    check_pool_sizes(dataset.train.labels, dataset.test.labels, search_obj.max_support, scorer.label_conditioning)
    engine = Retrainer.from_spec(select(cfg, ENGINE_DEPENDS_ON), dataset, ex.device)
    mean_probs = reference.run(_on(cfg, reference), ex, engine).mean(0)
    chosen = targets.run(_on(cfg, targets), ex, dataset, mean_probs)
    features, provider = None, None
    if scorer.needs_features:
        backbone_dir = pretrain.run(_on(cfg, pretrain), ex, dataset)
        features = embed.run(_on(cfg, embed), ex, dataset, backbone_dir)
    else:
        provider = models.TrainedModels(_on(cfg, models), ex, engine)
    train = TrainSet(dataset.train.labels, None if features is None else features.train, dataset.ordering)
    queries = Queries(chosen.ids, dataset.test.labels[chosen.ids],
                      None if features is None else features.test[chosen.ids])
    scored = score.run(_on(cfg, score), ex, scorer, train, queries, provider, features,
                       evaluation.needs_attributions)
    lds_result = evaluation.evaluate(_on(cfg, lds), ex, engine, chosen.ids, scored.attributions,
                                     scorer.lds_sparsity)
    searched = search.run(_on(cfg, search), ex, engine, chosen, scored.topk)
    labels = _labels(cfg, scorer, task.name)
    extra = {"task": task.name, "labels": asdict(labels), "method": labels.method, "choices": choices or {},
             "reference_accuracy": float((mean_probs.argmax(1) == dataset.test.labels).mean()),
             "knn_accuracy": None if features is None else features.knn_accuracy,
             "score_cost": scored.cost, "n_trainings": int(searched.support["n_trainings"].sum()),
             "trained_this_run": searched.trained, "n_rounds": searched.rounds,
             "search": key_of(_on(cfg, search).search), **_lds_record(lds_result)}
    summary = summarize.summarize(ex.run_dir, searched.support, search_obj.max_support, extra)
    print(summarize.format_table(searched.support, summary, dataset.test.classes), flush=True)
    print(f"run directory: {ex.run_dir}", flush=True)
    return summary


def _labels(cfg: DictConfig, scorer: Scorer, task: str) -> summarize.RunLabels:
    """The names this run gives itself in tables: from the objects it built and the groups' labels."""
    backbone = cfg.backbone.get("label") if scorer.needs_features else None
    return summarize.RunLabels(method=scorer.display_label(backbone), backbone=backbone, task=task,
                               arch=cfg.arch.get("label"), trainer=cfg.trainer.get("label"),
                               dataset=cfg.dataset.name)


def _lds_record(result: dict | None) -> dict:
    return {"lds": None if result is None else result["mean"], "lds_ci": None if result is None else result["ci"],
            "lds_sparsify_top": None if result is None else result["sparsify_top"]}
