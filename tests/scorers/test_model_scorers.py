"""Model-based scorers (Grad-Cos, TRAK, Datamodels) and the LDS on real digits models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brittle.api import bank as subset_bank
from brittle.api import rank
from brittle.eval.lds import lds, sparsify_top
from brittle.scorers.base import TargetSet, TrainSet
from brittle.scorers.datamodels import Datamodels, fit_datamodel
from brittle.scorers.gradcos import GradCos
from brittle.scorers.random import RandomOrder
from brittle.scorers.trak import Trak
from tests.helpers import DigitsModels

K = 40
QUERIES = np.array([3, 40, 77, 111, 150, 190, 222, 260, 300, 340])


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return DigitsModels(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def bank(ctx):
    return subset_bank(ctx.cfg, ctx.engine, 60, 0.5, "datamodels")


def _valid(topk, ctx, pool="same_class"):
    labels = ctx.data.test.labels[QUERIES]
    assert topk.shape == (len(QUERIES), K) and topk.dtype == np.int64
    for row, label in zip(topk, labels):
        assert len(set(row.tolist())) == K
        if pool == "same_class":
            assert (ctx.data.train.labels[row] == label).all()


def _rank(scorer, ctx):
    d = ctx.data
    return rank(scorer, None, d.train.labels, None, d.test.labels[QUERIES], QUERIES, K,
                models=ctx.models_for(scorer))


def _scores_of(scorer, ctx):
    d = ctx.data
    scorer.prepare(TrainSet(d.train.labels), ctx.models_for(scorer), torch.device("cpu"))
    return scorer.scores(TargetSet(QUERIES, d.test.labels[QUERIES]))


def test_bank_shapes_and_alpha(bank, ctx):
    assert (bank.masks.shape == (60, len(ctx.data.train))
            and bank.margins.shape == (60, len(ctx.data.test)))
    assert np.allclose(bank.masks.mean(1), 0.5, atol=0.01)
    assert (bank.margins > 0).mean() > 0.85  # half-data MLPs still get most digits right


def test_gradcos_valid_and_ranks_all_images(ctx):
    scorer = GradCos()
    _valid(_rank(scorer, ctx), ctx, pool="all")
    # the most gradient-aligned training images are mostly of the target's class anyway
    topk = _rank(scorer, ctx)
    same = np.mean([(ctx.data.train.labels[r[:10]] == lab).mean()
                    for r, lab in zip(topk, ctx.data.test.labels[QUERIES])])
    assert same > 0.7


def test_gradcos_holds_only_the_targets_its_memory_budget_fits(ctx, monkeypatch):
    """A budget for two target gradients next to one training batch: the targets go two at a time
    and the cosines are those computed with every target at once."""
    from brittle.scorers import gradcos

    whole = _scores_of(GradCos(batch_size=64), ctx)
    scorer = GradCos(batch_size=64)
    scorer.prepare(TrainSet(ctx.data.train.labels), ctx.models_for(scorer), torch.device("cpu"))
    row = scorer._bytes
    scorer.memory_budget = 2 * 64 * row + 2 * 2 * row + 1
    rows: list[int] = []
    real = gradcos.per_sample_grads
    monkeypatch.setattr(gradcos, "per_sample_grads",
                        lambda m, x, y: rows.append(len(x)) or real(m, x, y))
    budgeted = scorer.scores(TargetSet(QUERIES, ctx.data.test.labels[QUERIES]))
    # each sub-batch: targets, then the train batches
    query_calls = rows[::1 + -(-len(ctx.data.train) // 64)]
    assert query_calls == [2] * (len(QUERIES) // 2)
    np.testing.assert_allclose(budgeted, whole, rtol=1e-5, atol=1e-6)


def test_trak_beats_random_on_lds(ctx, bank):
    trak = Trak(n_models=3, proj_dim=256, pool="same_class")
    _valid(_rank(trak, ctx), ctx)
    trak_scores = _scores_of(Trak(n_models=3, proj_dim=256), ctx)
    rand_scores = np.stack([np.random.default_rng(q).standard_normal(len(ctx.data.train))
                            for q in QUERIES])
    margins = bank.margins[:, QUERIES]
    lds_trak = lds(bank.masks, margins, trak_scores)
    lds_rand = lds(bank.masks, margins, rand_scores)
    assert lds_trak.mean() > lds_rand.mean() + 0.1, (lds_trak.mean(), lds_rand.mean())


def test_datamodels_from_bank_valid(ctx, bank):
    dm = Datamodels(n_models=60, alpha=0.5, pool="same_class")
    _valid(_rank(dm, ctx), ctx)
    assert dm.cost().bytes_stored > 0 and dm.cost().models_seconds > 0 and dm.cost().n_models == 60
    _valid(_rank(Datamodels(n_models=60, alpha=0.5), ctx), ctx, pool="all")


def test_datamodels_recover_known_weights():
    rng = np.random.default_rng(0)
    m, n = 600, 80
    theta = np.zeros(n)
    theta[rng.choice(n, 8, replace=False)] = rng.uniform(0.5, 2.0, 8) * rng.choice([-1, 1], 8)
    masks = rng.random((m, n)) < 0.5
    margins = masks @ theta + 0.3 + 0.05 * rng.standard_normal(m)
    coef, bias, alpha = fit_datamodel(masks, margins)
    assert np.corrcoef(coef, theta)[0, 1] > 0.99
    assert set(np.argsort(-coef)[:4]) == set(np.argsort(-theta)[:4])
    assert abs(bias - 0.3) < 0.1 and alpha > 0


def test_released_weights_are_loaded_and_checked(ctx, tmp_path):
    from brittle.runtime.errors import BrittleError
    n_train, n_test = len(ctx.data.train), len(ctx.data.test)
    w = torch.randn(n_train, n_test)
    torch.save({"weight": w}, tmp_path / "dm.pt")
    dm = Datamodels(weights=str(tmp_path / "dm.pt"), pool="same_class")
    topk = _rank(dm, ctx)
    _valid(topk, ctx)
    t0, label = QUERIES[0], ctx.data.test.labels[QUERIES[0]]
    pool = np.flatnonzero(ctx.data.train.labels == label)
    assert np.array_equal(topk[0], pool[np.argsort(-w[pool, t0].numpy(), kind="stable")[:K]])
    torch.save({"weight": w[:10]}, tmp_path / "bad.pt")
    with pytest.raises(BrittleError, match="has weight of shape"):
        bad = Datamodels(weights=str(tmp_path / "bad.pt"))
        bad.prepare(TrainSet(ctx.data.train.labels), ctx.models_for(bad), torch.device("cpu"))
    with pytest.raises(BrittleError,
                       match="in the official dataset order, but the dataset was loaded in "
                                           "the class-folder order"):
        other = Datamodels(weights=str(tmp_path / "dm.pt"))
        other.prepare(TrainSet(ctx.data.train.labels, ordering="class-folder"),
                      ctx.models_for(other), torch.device("cpu"))


def test_lds_known_answers():
    rng = np.random.default_rng(1)
    masks = rng.random((200, 30)) < 0.5
    tau = rng.standard_normal((3, 30))
    margins = masks @ tau.T  # an exactly linear bank
    assert np.allclose(lds(masks, margins, tau), 1.0)
    assert np.allclose(lds(masks, margins, -tau), -1.0)
    rand = RandomOrder(0)
    rand.prepare(TrainSet(np.zeros(30, np.int64)), None, torch.device("cpu"))
    assert abs(lds(masks, margins, rand.scores(TargetSet(np.arange(3),
                                                       np.zeros(3, np.int64)))).mean()) < 0.3


def test_sparsify_keeps_top_fraction_by_magnitude():
    s = np.array([[0.1, -5.0, 3.0, 0.2, -0.05]])
    assert sparsify_top(s, 0.4).tolist() == [[0.0, -5.0, 3.0, 0.0, 0.0]]


def test_lds_agrees_with_direct_rank_correlation_on_real_bank(bank, ctx):
    from scipy.stats import rankdata
    scores = np.random.default_rng(0).standard_normal((len(QUERIES), len(ctx.data.train)))
    ours = lds(bank.masks, bank.margins[:, QUERIES], scores)
    for t, q in enumerate(QUERIES):
        pred = np.array([scores[t][m].sum() for m in bank.masks])
        direct = np.corrcoef(rankdata(bank.margins[:, q]), rankdata(pred))[0, 1]
        assert np.isclose(ours[t], direct)
