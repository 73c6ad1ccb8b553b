"""What a preset's jobs cost before any runs: brittle's own cost model (a run's TrainingPlan,
brittle/counterfactual/budget.py, as brittle/pipeline.py states it at the start) summed over a
sweep's jobs, on an empty cache: every job's search, the reference models and each scorer's models
once (the stage cache shares them between jobs of one source arch), every job's LDS bank once per
arch."""
from __future__ import annotations

from functools import cache

from hydra.utils import instantiate

from brittle.counterfactual.budget import TrainingPlan


@cache
def _cfg(overrides: tuple[str, ...]):
    from bench.gpu.common import compose_cfg
    return compose_cfg(list(overrides))


def job_parts(overrides: tuple[str, ...]) -> dict[tuple[str, str], int]:
    """{(purpose, what it is shared by): models} of one job, as plan_models counts them."""
    cfg = _cfg(overrides)
    search, scorer = instantiate(cfg.search), instantiate(cfg.scorer)
    arch = str(cfg.arch.get("name"))
    source = str(cfg.source_arch.get("name")) if cfg.get("source_arch") is not None else arch
    parts = {("search", " ".join(overrides)):
             int(cfg.targets.n) * int(search.max_tests()) * int(search.n_test),
             ("reference", source): int(cfg.reference.n_models)}
    request = scorer.models_needed()
    if request is not None and not scorer.needs_features:
        parts[("scorer", f"{request.purpose}@{source}")] = int(request.n_models)
    if cfg.eval.get("n_models") is not None:
        parts[("LDS bank", arch)] = int(cfg.eval.n_models)
    return parts


def sweep_plan(jobs: tuple[tuple[str, ...], ...]) -> tuple[TrainingPlan, str | None]:
    """The sweep's TrainingPlan by purpose, and its backbone's pretraining when a job embeds."""
    shared: dict[tuple[str, str], int] = {}
    backbone = None
    for job in jobs:
        shared.update(job_parts(job))
        cfg = _cfg(job)
        if instantiate(cfg.scorer).needs_features and cfg.backbone.get("epochs"):
            backbone = f"{cfg.backbone.name} pretraining for {int(cfg.backbone.epochs)} epochs"
    plan = TrainingPlan()
    for purpose in ("search", "reference", "scorer", "LDS bank"):
        plan.add(purpose, sum(n for (p, _), n in shared.items() if p == purpose))
    return plan, backbone
