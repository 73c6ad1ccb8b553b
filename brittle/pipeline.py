"""The stages of a brittleness run, in order; each is skipped when its artifact already exists.

data -> reference (cache) -> targets -> pretrain (cache) -> embed (cache) -> score -> search ->
summarize (the cheap stages first, so that bad settings fail before pretraining). Cached stages live in `cache_dir`, keyed by the config they depend on; the rest go to
the run directory, which is bound to its config (`run_spec.json`) so a rerun resumes it.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from brittle.artifacts import StageCache, check_run_dir, save_json, save_npy, save_parquet
from brittle.config import resolve_device
from brittle.costs import Meter
from brittle.counterfactual import CounterfactualTester, TestLog, search_target
from brittle.data import Dataset
from brittle.embed import embed
from brittle.evaluate import stage_lds
from brittle.retrain.engine import Retrainer
from brittle.retrain.perturb import flip_classes
from brittle.retrain.reference import reference
from brittle.metrics import sparsify_top
from brittle.scorers.base import ScoreContext, check_pool_sizes, rank_from_scores, validate_features
from brittle.ssl import pretrain
from brittle.summary import format_table, summarize
from brittle.targets import select_targets

log = logging.getLogger(__name__)

# Settings that change how a run executes, never what it computes.
_EXECUTION_KEYS = {"debug", "progress", "device", "cache_dir"}


def run_spec(cfg: DictConfig) -> dict:
    full = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in full.items() if k not in _EXECUTION_KEYS}


_SCORE_OPTIONS = ("save_scores", "sparsify_top", "chunk")


def build_scorer(cfg: DictConfig) -> tuple[Any, dict]:
    """The scorer object, and the pipeline's own options found in the scorer group."""
    node = OmegaConf.to_container(cfg.scorer, resolve=True)
    options = {k: node.pop(k) for k in _SCORE_OPTIONS if k in node}
    return instantiate(node), options


def load_data(cfg: DictConfig) -> Dataset:
    data = instantiate(cfg.dataset.loader)
    log.info("dataset %s: %d train, %d test images of shape %s, %d classes", data.name,
             len(data.train), len(data.test), tuple(data.train.images.shape[1:]), data.num_classes)
    return data


def run(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict:
    """Run (or resume) every stage; returns the summary dict also written to summary.json."""
    run_dir = Path(run_dir)
    resolve_device(cfg)  # a bad device fails now, not after pretraining
    scorer, score_options = build_scorer(cfg)
    task = instantiate(cfg.task)
    search = instantiate(cfg.search)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_run_dir(run_dir, run_spec(cfg))
    cache = StageCache(Path(cfg.cache_dir))
    data = load_data(cfg)
    # cheap checks and stages first, so bad settings fail before pretraining starts
    check_pool_sizes(data.train.labels, np.unique(data.test.labels), search.max_support,
                     scorer.label_conditioning)
    engine = Retrainer.from_config(cfg, data)
    mean_probs = reference(cfg, engine, cache).mean(0)
    ref_acc = float((mean_probs.argmax(1) == data.test.labels).mean())
    targets = stage_targets(cfg, run_dir, data, mean_probs)
    features = None
    knn = None
    if getattr(scorer, "needs_features", True):
        backbone_dir = pretrain(cfg, data, cache)
        features = embed(cfg, data, backbone_dir, cache)
        knn = features.knn_accuracy
    ctx = ScoreContext(cfg, data, engine, cache, run_dir)
    if cfg.eval.name == "lds":
        score_options["save_scores"] = True
    topk, cost = stage_score(cfg, run_dir, scorer, features, ctx, targets, search.max_support, score_options)
    flips = flip_classes(mean_probs[targets], data.test.labels[targets]) if task.needs_flip_class else None
    lds_mean = stage_lds(cfg, run_dir, engine, cache, targets)
    support, trained, rounds = stage_search(cfg, run_dir, engine, task, search, data, targets, topk, flips)
    extra = {"task": task.name, "method": _method_label(cfg, choices), "choices": choices or {},
             "reference_accuracy": ref_acc, "knn_accuracy": knn, "score_cost": cost,
             "n_trainings": int(support["n_trainings"].sum()), "trained_this_run": trained,
             "n_rounds": rounds,
             "search": OmegaConf.to_container(cfg.search, resolve=True), "lds": lds_mean}
    summary = summarize(run_dir, support, search.max_support, extra)
    print(format_table(support, summary, data.test.classes), flush=True)
    print(f"run directory: {run_dir}", flush=True)
    return summary


def stage_targets(cfg: DictConfig, run_dir: Path, data: Dataset, mean_probs: np.ndarray) -> np.ndarray:
    """Stage: the test indices to estimate support for -> targets.npy int64 [T]."""
    targets = select_targets(cfg, data.test.labels, mean_probs)
    path = run_dir / "targets.npy"
    if not path.exists():
        save_npy(path, targets)
    return targets


def stage_score(cfg: DictConfig, run_dir: Path, scorer: Any, features: Any, ctx: ScoreContext,
                targets: np.ndarray, k: int, options: dict) -> tuple[np.ndarray, dict]:
    """Stage: rank training images per target -> topk.npy int64 [T, k], its cost record, and
    (scorer.save_scores) scores.npy float32 [T, N_train] for LDS, sparsified to the top fraction."""
    path, cost_path = run_dir / "topk.npy", run_dir / "score_cost.json"
    if path.exists() and cost_path.exists():
        return np.load(path), json.loads(cost_path.read_text())
    data = ctx.data
    query_labels = data.test.labels[targets]
    check_pool_sizes(data.train.labels, query_labels, k, scorer.label_conditioning)
    train = features.train if features is not None else np.zeros((len(data.train), 0), np.float32)
    test = features.test[targets] if features is not None else np.zeros((len(targets), 0), np.float32)
    if features is not None:
        validate_features("train", train)
        validate_features("test", test)
    topk, kept = [], []
    chunk = int(options.get("chunk", 1024))
    with Meter() as meter:
        if hasattr(scorer, "prepare"):
            scorer.prepare(ctx)
        for lo in range(0, len(targets), chunk):
            sl = slice(lo, lo + chunk)
            scores = scorer.scores(train, data.train.labels, test[sl], query_labels[sl], targets[sl])
            topk.append(rank_from_scores(scores, k))
            if options.get("save_scores"):
                dense = np.where(np.isfinite(scores), scores, 0.0)
                kept.append(sparsify_top(dense, float(options.get("sparsify_top", 1.0))).astype(np.float32))
    topk_arr = np.concatenate(topk)
    # what a user must keep to score new targets: features or the method's own models/features
    stored = topk_arr.nbytes + (train.nbytes if features is not None else 0) + \
        int(getattr(scorer, "bytes_stored", 0))
    if kept:
        save_npy(run_dir / "scores.npy", np.concatenate(kept))
    seconds = meter.seconds
    cost = {"seconds": seconds, "seconds_per_target": seconds / max(len(targets), 1),
            "peak_bytes": int(meter.peak_bytes), "cuda_peak_bytes": int(meter.cuda_peak_bytes),
            "bytes_stored": int(stored),
            "embed_images_per_second": features.images_per_second if features is not None else None,
            # training of the models the method needs (cached stages count once, when built)
            "models_seconds": float(getattr(scorer, "models_seconds", 0.0))
            + (features.seconds if features is not None else 0.0),
            "n_models": int(getattr(scorer, "n_models", 1 if features is not None else 0))}
    log.info("scored %d targets in %.2f s (%.3f s per target)", len(targets), seconds,
             cost["seconds_per_target"])
    save_npy(path, topk_arr)
    save_json(cost_path, cost)
    return topk_arr, cost


def stage_search(cfg: DictConfig, run_dir: Path, engine: Retrainer, task: Any, search: Any,
                 data: Dataset, targets: np.ndarray, topk: np.ndarray, flips: np.ndarray | None
                 ) -> tuple[pd.DataFrame, int, int]:
    """Stage: search each target's support -> support.parquet and tests.parquet; also returns
    the models trained in this process and the sequential search rounds."""
    test_log = TestLog(run_dir / "tests.jsonl")
    tester = CounterfactualTester(engine, task, test_log, int(cfg.seed), int(search.n_test))
    rows, rounds = [], 0
    for i, target in enumerate(targets):
        flip = None if flips is None else int(flips[i])
        start = time.perf_counter()
        result = search_target(search, tester, int(target), topk[i], flip)
        row = {"target": int(target), "label": int(data.test.labels[target]),
               "support": int(result.support), "n_trainings": result.n_tests * int(search.n_test)}
        if flip is not None:
            row["flip_class"] = flip
        rows.append(row)
        rounds += result.n_rounds
        log.info("target %d/%d (test #%d): support %s after %d tests (%.1f s)", i + 1, len(targets),
                 target, result.support, result.n_tests, time.perf_counter() - start)
    support = pd.DataFrame(rows)
    save_parquet(run_dir / "support.parquet", support)
    save_parquet(run_dir / "tests.parquet", test_log.frame())
    return support, tester.trained, rounds


def _method_label(cfg: DictConfig, choices: dict[str, str] | None) -> str:
    if choices:
        scorer = choices.get("scorer", "?")
        if scorer in ("random",):
            return scorer
        return f"{scorer} {choices.get('backbone', '')}".strip()
    return str(cfg.scorer._target_).rsplit(".", 1)[-1]
