"""dattri's attributors as scorers on real digits models: every supported method scores, the
unsupported ones are refused with their reason, and dattri's sign convention (larger = the
training image supports the target) is checked by retraining without each method's top images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("dattri")

from brittle.api import rank  # noqa: E402
from brittle.counterfactual.rankings import rank_from_scores  # noqa: E402
from brittle.runtime.errors import BrittleError  # noqa: E402
from brittle.scorers.attributors import METHODS, UNSUPPORTED, Dattri  # noqa: E402
from brittle.scorers.base import TargetSet, TrainSet  # noqa: E402
from tests.helpers import DigitsModels, run_brittle  # noqa: E402

QUERIES = np.array([3, 40, 77, 111, 150, 190])
REMOVED = 60


def _scores_of(ctx: DigitsModels, scorer: Dattri) -> np.ndarray:
    scorer.prepare(TrainSet(ctx.data.train.labels), ctx.models_for(scorer), torch.device("cpu"))
    return scorer.scores(TargetSet(QUERIES, ctx.data.test.labels[QUERIES]))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return DigitsModels(tmp_path_factory.mktemp("dattri"))


@pytest.mark.heavy
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_supported_method_scores_digits(ctx, method):
    scorer = Dattri(method=method, n_models=2, proj_dim=256)
    scores = _scores_of(ctx, scorer)
    assert scores.shape == (len(QUERIES), len(ctx.data.train)) and np.isfinite(scores).all()
    assert scores.std(axis=1).min() > 0   # not a constant
    # the search's ranking of these scores (the public rank() path: test_rank_ranks_dattri_scores)
    topk = rank_from_scores(scorer.pool_scores(scores, TargetSet(QUERIES,
                                                               ctx.data.test.labels[QUERIES])), 20)
    assert topk.shape == (len(QUERIES), 20) and all(len(set(r)) == 20 for r in topk)
    # a proponent of a digit is mostly a training image of the same digit
    labels = ctx.data.test.labels[QUERIES]
    same = np.mean([(ctx.data.train.labels[r[:10]] == lab).mean() for r, lab in zip(topk, labels)])
    assert same > 0.6, (method, same)


def test_rank_ranks_dattri_scores_highest_first(ctx):
    """brittle.api.rank on a dattri scorer: the top-k of its scores within each target's pool."""
    scores = _scores_of(ctx, Dattri(method="grad-dot", n_models=2, proj_dim=256))
    topk = rank(Dattri(method="grad-dot", n_models=2, proj_dim=256), None, ctx.data.train.labels,
                None, ctx.data.test.labels[QUERIES], QUERIES, 20,
                models=ctx.models_for(Dattri(method="grad-dot")))
    labels = ctx.data.test.labels[QUERIES]
    for row, top, label in zip(scores, topk, labels):
        pool = np.flatnonzero(ctx.data.train.labels == label)
        assert (ctx.data.train.labels[top] == label).all()
        np.testing.assert_array_equal(np.sort(row[top])[::-1], np.sort(row[pool])[::-1][:20])


@pytest.mark.parametrize("method", sorted(UNSUPPORTED))
def test_unsupported_methods_are_refused_with_the_reason(method):
    with pytest.raises(BrittleError,
                       match=f"scorer.method={method} is not supported: .+; use one of"):
        Dattri(method=method)


def _margin_after_removing(ctx, target: int, removed: np.ndarray, seeds=(0, 1, 2)) -> float:
    keep = torch.as_tensor(np.setdiff1d(np.arange(len(ctx.data.train)), removed))
    models = ctx.engine.train_many(keep, ctx.engine.train_y, list(seeds))
    return float(np.mean([ctx.engine.evaluate(m, int(target))[1] for m in models]))


@pytest.mark.parametrize("method", ["tracin", "if-cg"])
def test_removing_top_ranked_images_lowers_the_margin_more_than_random(ctx, method):
    """dattri's sign: removing the top-60 (largest scores) must hurt the target's margin more than
    removing 60 random training images, on average over targets."""
    scores = _scores_of(ctx, Dattri(method=method, n_models=2, proj_dim=256))
    rng = np.random.default_rng(0)
    top, rand = [], []
    for row, target in zip(scores, QUERIES):
        top.append(_margin_after_removing(ctx, target, np.argsort(-row)[:REMOVED]))
        rand.append(_margin_after_removing(ctx, target,
                                           rng.choice(len(row), REMOVED, replace=False)))
    assert np.mean(top) < np.mean(rand) - 0.5, (method, np.mean(top), np.mean(rand))
    # and the opposite end of the ranking (opponents) hurts less than the proponents
    low = [_margin_after_removing(ctx, t, np.argsort(row)[:REMOVED]) for row,
           t in zip(scores[:3], QUERIES[:3])]
    assert np.mean(low) > np.mean(top[:3])


def test_in_scratch_gives_a_cache_dir_to_attributors_that_take_one(tmp_path):
    """dattri's block-projected attributors (LoGra, FactGraSS) write batch_metadata.json into
    `cache_dir`, the working directory when none is given: brittle passes its scratch directory."""
    import inspect

    from dattri.algorithm import FactGraSSAttributor, LoGraAttributor

    from brittle.scorers.attributors import in_scratch

    class Caching:
        def __init__(self, task, cache_dir=None):
            self.task, self.cache_dir = task, cache_dir

    class Plain:
        def __init__(self, task):
            self.task = task

    assert in_scratch(Caching, tmp_path, task=1).cache_dir == str(tmp_path)
    assert in_scratch(Plain, tmp_path, task=1).task == 1   # no cache_dir handed to it
    for cls in (LoGraAttributor, FactGraSSAttributor):   # the real ones take it as Caching does
        assert inspect.signature(cls).parameters["cache_dir"].default is None


SWEEP = ["targets.n=1", "search.budget=1", "search.n_test=1", "search.max_support=16",
         "reference.n_models=1", "arch.recipe.epochs=8", "scorer.n_models=1", "scorer.proj_dim=64",
         "progress=false"]


@pytest.mark.heavy
def test_every_method_writes_only_into_its_run_and_cache_directories(tmp_path):
    """Each scorer=dattri method and scorer=trak run from an empty working directory (the real
    command line in its own process): afterwards the working directory is still empty and nothing
    but the sweep's run directories and the cache exists beside it."""
    pytest.importorskip("trak")
    work = tmp_path / "work"
    work.mkdir()
    runs = [["-m", "scorer=dattri", f"scorer.method={','.join(sorted(METHODS))}"], ["scorer=trak"]]
    for i, args in enumerate(runs):
        dirs = [f"hydra.sweep.dir={tmp_path}/sweep{i}", f"hydra.run.dir={tmp_path}/run{i}"]
        done = run_brittle([*args, *SWEEP, *dirs, f"cache_dir={tmp_path}/cache"], cwd=work,
                           timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run1", "sweep0", "work"]
    assert len(list((tmp_path / "sweep0").glob("*/summary.json"))) == len(METHODS)
    assert (tmp_path / "run1" / "summary.json").exists()
