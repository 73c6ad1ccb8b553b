"""A brittleness run: the one orchestrator. It builds the run's objects once (scorer, task,
search, evaluation, retraining engine), calls every stage of brittle/stages/ in order, each
handed only its declared slice of the config, and passes each stage's output to the next.

data -> reference (cache) -> targets -> pretrain (cache) -> embed (cache), or the scorer's
models / bank (cache) -> score -> LDS bank (cache) -> lds -> search -> summarize. The reference
models and the scorer's models are trained on `source_arch` when one is chosen (the same for every
retraining arch of a sweep); a scorer that brings its own targets (scores from a file) sets them.
Cheap stages and checks come first, so bad settings fail before pretraining. Cached stages live in
`cache_dir`, keyed by their slice; the others write into the run directory, which is bound to
the run's identity (`run_spec.json`) so a rerun resumes it.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from brittle.counterfactual.budget import TrainingPlan, shard_size
from brittle.counterfactual.searches import Checking, Search
from brittle.counterfactual.tasks import Task
from brittle.eval.lds import Evaluation, LinearDatamodelingScore
from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON
from brittle.retrain.engine import Engine
from brittle.retrain.replayable import check_engine
from brittle.runtime.execution import Execution, activate, execution_of, run_identity
from brittle.runtime.faults import check_writable
from brittle.runtime.files import check_run_dir
from brittle.runtime.timings import ModelClock
from brittle.runtime.tracking import Tracker
from brittle.scorers.base import Scorer, ScorerModels, TargetSet, TrainSet, check_pool_sizes
from brittle.stages import (
    bank,
    data,
    embed,
    lds,
    models,
    pretrain,
    reference,
    score,
    search,
    summarize,
    targets,
)
from brittle.stages.keys import key_digest, key_of, select, settings_of, with_source_arch

log = logging.getLogger(__name__)


def _on(cfg: DictConfig, stage: Any) -> DictConfig:
    """The slice of cfg that `stage` declared (its DEPENDS_ON minus its EXCLUDES)."""
    return select(cfg, stage.DEPENDS_ON, getattr(stage, "EXCLUDES", ()))


def run(cfg: DictConfig, run_dir: Path,
        choices: dict[str, str] | None = None) -> summarize.RunSummary:
    """Run (or resume) every stage; returns the record also written to summary.json. A chosen
    `logger` tracks the run meanwhile (brittle/runtime/tracking.py); it never stops the run."""
    # a file of targets.indices becomes its indices: the run's identity holds what was read
    cfg, indices_named = targets.with_indices_read(cfg)
    ex = execution_of(cfg, run_dir)  # a bad device fails now, not after pretraining
    ex = replace(ex, tracker=Tracker.of(cfg, ex.run_dir))   # so does a tracker's missing extra
    with ex.tracker.tracking():
        summary = _stages(cfg, ex, indices_named, choices)
        ex.tracker.log_summary(summary.to_json())
    return summary


def _stages(cfg: DictConfig, ex: Execution, indices_named: str,
            choices: dict[str, str] | None) -> summarize.RunSummary:
    """Every stage of `run`, in order."""
    activate(ex.device)
    scorer: Scorer = instantiate(cfg.scorer)
    task: Task = instantiate(cfg.task)
    search_obj: Search = instantiate(cfg.search)
    evaluation: Evaluation = instantiate(cfg.eval)
    check_writable(ex.cache.root, "cache_dir", locks=True)
    ex.cache.warn_earlier_schema()
    check_writable(ex.run_dir, "hydra.run.dir")
    check_run_dir(ex.run_dir, run_identity(cfg))
    dataset = data.run(_on(cfg, data), ex)
    targets.check_indices(cfg.targets, dataset, indices_named)   # before any model trains
    check_pool_sizes(dataset.train.labels, dataset.test.labels, search_obj.max_support,
                     scorer.pool)
    engine = Engine.from_slice(select(cfg, ENGINE_DEPENDS_ON), dataset, ex.device)
    source = with_source_arch(cfg)   # reference and scorer models: on `source_arch` when chosen
    source_engine = engine if source is cfg else Engine.from_slice(
        select(source, ENGINE_DEPENDS_ON), dataset, ex.device)
    given = scorer.given_targets(len(dataset.train), len(dataset.test), dataset.ordering,
                                 dataset.name, search_obj.max_support)
    plan_models(cfg, source, ex, engine, source_engine, (scorer, search_obj, evaluation), given)
    probs = reference.run(_on(source, reference), ex, source_engine)
    chosen = targets.run(_on(cfg, targets), ex, dataset, probs, given)
    features, models_given = None, None
    if scorer.needs_features:
        embed.check_space(_on(cfg, embed), ex, dataset)
        backbone_dir = pretrain.run(_on(cfg, pretrain), ex, dataset)
        features = embed.run(_on(cfg, embed), ex, dataset, backbone_dir)
    elif not score.recorded(ex.run_dir, score.wants_scores(_on(cfg, score),
                                                           evaluation.needs_attributions)):
        models_given = scorer_models(source, ex, source_engine, scorer)
    train = TrainSet(dataset.train.labels, None if features is None else features.train,
                     dataset.ordering)
    target_set = TargetSet(chosen.ids, dataset.test.labels[chosen.ids],
                      None if features is None else features.test[chosen.ids])
    scored = score.run(_on(cfg, score), ex, scorer, train, target_set, models_given, features,
                       evaluation.needs_attributions)
    lds_result = _evaluate(cfg, ex, engine, evaluation, chosen.ids, scored, scorer.lds_sparsity)
    searched = search.run(_on(cfg, search), ex, engine, task, search_obj, chosen, scored.topk)
    names = _names(cfg, scorer, task.name)
    details = summarize.RunDetails(
        task=task.name, names=names, method=names.method, choices=choices or {},
        reference_accuracy=float((probs.mean(0).argmax(1) == dataset.test.labels).mean()),
        knn_accuracy=None if features is None else features.knn_accuracy, score_cost=scored.cost,
        search_models=int(searched.support["n_models"].sum()),
        models_trained_this_run=searched.trained,
        n_rounds=searched.rounds, search=settings_of(select(cfg, ("search",))).get("search", {}),
        lds=None if lds_result is None else lds_result.mean,
        lds_ci=None if lds_result is None else list(lds_result.ci),
        lds_sparsify_top=None if lds_result is None else lds_result.sparsify_top,
        stage_seconds=dict(ex.times.seconds), models_trained=dict(ex.times.models),
        device=str(ex.device))
    for clock in {id(e.clock): e.clock for e in (engine, source_engine) if e.clock}.values():
        clock.save()
    summary = summarize.run(ex.run_dir, searched.support, search_obj.max_support, details)
    print(summarize.format_table(searched.support, summary, dataset.test.classes), flush=True)
    print(f"run directory: {_shown(ex.run_dir)}", flush=True)
    return summary


def plan_models(cfg: DictConfig, source: DictConfig, ex: Execution, engine: Engine,
                source_engine: Engine, built: tuple[Scorer, Search, Evaluation],
                given: Any) -> TrainingPlan:
    """Log at most how many models the run trains (and, when timed here before, for how long),
    and give each engine the clock that times its models (refined in the log by the first)."""
    scorer, search_obj, evaluation = built
    t = cfg.targets
    n = len(given) if given is not None else len(t.indices) if t.indices is not None else int(t.n)
    n = shard_size(n, int(t.shard), int(t.num_shards))
    engine.clock = ModelClock(ex.cache.root, key_digest(select(cfg, ENGINE_DEPENDS_ON)), ex.device)
    source_engine.clock = engine.clock if source_engine is engine else \
        ModelClock(ex.cache.root, key_digest(select(source, ENGINE_DEPENDS_ON)), ex.device)
    plan = TrainingPlan()
    _plan_search(plan, search_obj, n, ex.run_dir, engine.clock.known)
    if ex.cache.lookup("reference", key_of(_on(source, reference))) is None:
        plan.add("reference", int(cfg.reference.n_models),
                 seconds_per_model=source_engine.clock.known)
    request = scorer.models_needed()
    if request is not None and not scorer.needs_features:
        plan.add("scorer", request.n_models, seconds_per_model=source_engine.clock.known)
    own = _weighted_runs(cfg, source, engine, source_engine, built)
    if own is not None:
        plan.add("scorer", own, seconds_per_model=source_engine.clock.known)
    if isinstance(evaluation, LinearDatamodelingScore) and lds.recorded(ex.run_dir) is None:
        plan.add("LDS bank", int(evaluation.n_models), seconds_per_model=engine.clock.known)
    log.info("%s", plan.describe())
    engine.clock.planned = source_engine.clock.planned = plan.total
    return plan


def _weighted_runs(cfg: DictConfig, source: DictConfig, engine: Engine, source_engine: Engine,
                   built: tuple[Scorer, Search, Evaluation]) -> int | None:
    """Before any training, the checks of the weighted runs (brittle/retrain/replayable.py) of
    eval=lds_same_order and of a scorer that trains its own runs (scorer=magic: its memory is
    logged); the training runs of that scorer, else None."""
    scorer, _, evaluation = built
    if getattr(evaluation, "order", None) == "same_order":
        check_engine(engine, "eval=lds_same_order", cfg.arch.get("name"))
    own = getattr(scorer, "plan_models", None)
    return None if own is None else int(own(source_engine, source.arch.get("name")))


def _plan_search(plan: TrainingPlan, search_obj: Search, n: int, run_dir: Path,
                 per_model: float | None) -> None:
    """The search's models (targets x its most tests x n_test) and its checks' (targets x
    verify + refine_budget x (n_test + verify)), less those a resumed run has logged."""
    tests, n_test = search_obj.max_tests(), int(search_obj.n_test)
    done = _lines(run_dir / "tests.jsonl")
    if tests is not None:
        plan.add("search", max(0, n * tests * n_test - done),
                 f"{n} targets x {tests} tests x {n_test}" + (f" - {done} done" if done else ""),
                 per_model)
    checking = Checking.of(search_obj)
    per_target = checking.models_per_target(n_test)
    if per_target:
        done = _lines(run_dir / "checks.jsonl")
        plan.add("checks", max(0, n * per_target - done),
                 f"{n} targets x ({checking.verify} + {checking.refine_budget} x "
                 f"({n_test} + {checking.verify}))" + (f" - {done} done" if done else ""),
                 per_model)


def scorer_models(cfg: DictConfig, ex: Execution, engine: Engine, scorer: Scorer) -> ScorerModels:
    """The engine and the models a model-based scorer asked for: checkpoints or a subset bank."""
    request = scorer.models_needed()
    if request is None:
        return ScorerModels(engine, ex.run_dir)
    if request.bank:
        fitted = bank.run(_on(cfg, bank), ex, engine, request.n_models, request.fraction,
                          request.purpose)
        return ScorerModels(engine, ex.run_dir, bank=fitted, seconds=fitted.seconds)
    trained = models.run(_on(cfg, models), ex, engine, request)
    return ScorerModels(engine, ex.run_dir, states=trained.states, seconds=trained.seconds)


def _evaluate(cfg: DictConfig, ex: Execution, engine: Engine, evaluation: Evaluation, ids: Any,
              scored: score.Scored, default_sparsity: float) -> lds.LdsResult | None:
    """The LDS of the scorer's attributions on the 'lds' bank, or the 'lds_same_order' bank
    of eval=lds_same_order (trained unless already scored)."""
    if not isinstance(evaluation, LinearDatamodelingScore):
        return None
    held_out = None
    if lds.recorded(ex.run_dir) is None:
        held_out = bank.run(_on(cfg, bank), ex, engine, int(evaluation.n_models),
                            float(evaluation.alpha), evaluation.purpose)
    labels = (engine.train_y, engine.test_y)   # for sign estimation alone, beside the LDS
    return lds.run(ex, evaluation, held_out, ids, scored.attributions, default_sparsity, labels)


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def _shown(path: Path) -> Path:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def _names(cfg: DictConfig, scorer: Scorer, task: str) -> summarize.RunNames:
    """The names this run gives itself in tables: from the objects it built and the groups'
    labels."""
    backbone = cfg.backbone.get("name") if scorer.needs_features else None
    # where a model-based scorer's models came from
    source = (cfg.source_arch.get("name")
              if cfg.get("source_arch") is not None
              and (scorer.models_needed() is not None or hasattr(scorer, "plan_models"))
              else None)
    return summarize.RunNames(method=scorer.display_name(backbone), backbone=backbone, task=task,
                               source=source, arch=cfg.arch.get("name"),
                               trainer=cfg.trainer.get("name"), dataset=cfg.dataset.name)
