"""MAGIC's metagradients (brittle/retrain/metagradient.py) against finite differences of real
retraining, its checkpointed replay against the forward run, and the scorer's refusals."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import MLP, SmallCNN
from brittle.retrain.metagradient import forward, margins, metagradients, replay
from brittle.retrain.recipe import Recipe
from brittle.retrain.replayable import (
    arch_problem,
    config_problem,
    precision_problem,
    recipe_problem,
)
from brittle.retrain.weighted import WeightedRun

TINY_MLP = functools.partial(MLP, in_shape=[1, 8, 8], num_classes=10, hidden=[16])
RECIPES = {
    # momentum, Nesterov, weight decay, label smoothing, warm-up, translation drawn per image
    "nesterov_translate": Recipe(epochs=4, batch_size=16, lr=0.1, nesterov=True, translate=1),
    # plain SGD: no momentum buffers in the state
    "plain_sgd": Recipe(epochs=3, batch_size=16, lr=0.2, momentum=0.0, weight_decay=0.0,
                        label_smoothing=0.0),
}


@pytest.fixture(scope="module")
def tiny():
    """80 digits training images and 3 test targets, float64."""
    d = load_digits()
    x = normalized(d.train.images[:80], [0.3], [0.4]).double()
    tx = normalized(d.test.images[:3], [0.3], [0.4]).double()
    return x, torch.as_tensor(d.train.labels[:80]), tx, torch.as_tensor(d.test.labels[:3])


def _margins_after(run: WeightedRun, w: torch.Tensor, tx, ty) -> torch.Tensor:
    final, _ = run.run(w)
    return margins(run.logits(final.params, tx), ty)


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("every", [None, 1], ids=["sqrt_replay", "every_state_kept"])
def test_metagradients_match_finite_differences_of_retraining(tiny, name, every):
    """Perturb one image's weight by +-eps, retrain deterministically from scratch: the
    margins' central difference is the metagradient (relative error < 1e-3, float64), for
    several images and targets, with the checkpointed replay and without it."""
    x, y, tx, ty = tiny
    run = WeightedRun(TINY_MLP, RECIPES[name], x, y, seed=3)
    w = torch.ones(len(y), dtype=torch.float64)
    grads = metagradients(run, w, tx, ty, forward(run, w, every))
    eps = 1e-5
    for i in (0, 5, 17, 42, 79):
        e = torch.zeros_like(w)
        e[i] = eps
        fd = (_margins_after(run, w + e, tx, ty) - _margins_after(run, w - e, tx, ty)) / (2 * eps)
        assert grads[:, i].abs().min() > 1e-4   # not a vacuous comparison of zeros
        assert ((fd - grads[:, i]).abs() / grads[:, i].abs()).max() < 1e-3, (i, fd, grads[:, i])


def test_the_replay_recomputes_the_forward_runs_states_bit_for_bit(tiny):
    """Every state the backward pass replays from a checkpoint is the forward run's state of
    that step, bitwise; and the metagradients are the same bits with or without replay."""
    x, y, tx, ty = tiny
    run = WeightedRun(TINY_MLP, RECIPES["nesterov_translate"], x, y, seed=3)
    w = torch.ones(len(y), dtype=torch.float64)
    every_state, checkpointed = forward(run, w, 1), forward(run, w, 4)
    assert len(every_state.kept) == len(run.steps) == 20
    assert sorted(checkpointed.kept) == [0, 4, 8, 12, 16]
    for start in checkpointed.kept:
        for s, state in enumerate(replay(run, w, checkpointed, start), start):
            ref = every_state.kept[s]
            assert all(torch.equal(a, b) for a, b in zip(state.params, ref.params))
            assert (state.momenta is None) == (ref.momenta is None) == (s == 0)
            if s:
                assert all(torch.equal(a, b) for a, b in zip(state.momenta, ref.momenta))
    assert torch.equal(metagradients(run, w, tx, ty, every_state),
                       metagradients(run, w, tx, ty, checkpointed))


def test_targets_batched_in_one_pass_are_each_targets_own_metagradient(tiny):
    """The targets share a pass (a leading cotangent dimension): each row equals the target
    carried back alone."""
    x, y, tx, ty = tiny
    run = WeightedRun(TINY_MLP, RECIPES["nesterov_translate"], x, y, seed=4)
    w = torch.ones(len(y), dtype=torch.float64)
    fwd = forward(run, w)
    together = metagradients(run, w, tx, ty, fwd)
    for t in range(len(ty)):
        alone = metagradients(run, w, tx[t:t + 1], ty[t:t + 1], fwd)
        assert torch.allclose(together[t], alone[0], rtol=1e-10, atol=1e-14)


class _WithDropout(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.1), nn.Linear(16, 10))


def test_the_replay_refuses_what_it_cannot_reproduce_one_line_each():
    """BatchNorm without running averages, dropout, adamw, fp16/bf16 (and auto on a GPU),
    progressive resizing and trainer=fast: one line naming the setting and what to use instead;
    BatchNorm with its running averages is replayed (tests/retrain/test_batchstats.py)."""
    who = "scorer=magic"
    assert arch_problem(SmallCNN([1, 8, 8], 10), who, "cnn") is None
    cumulative = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4, momentum=None))
    assert arch_problem(cumulative, who) == (
        "scorer=magic follows BatchNorm's running averages; the arch (Sequential) has "
        "BatchNorm2d with momentum=None or track_running_stats=False: use arch=cnn")
    assert "has Dropout: use arch=mlp" in arch_problem(_WithDropout(), who)
    assert arch_problem(TINY_MLP(), who) is None
    assert arch_problem(nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(64, 10)),
                        who) is None   # p = 0 draws nothing
    assert recipe_problem({"optimizer": "adamw"}, who) == (
        "scorer=magic supports the sgd optimizer in fp32; trainer.recipe.optimizer=adamw: use sgd")
    assert recipe_problem({"precision": "fp16"}, who) == (
        "scorer=magic supports the sgd optimizer in fp32; trainer.recipe.precision=fp16: "
        "use fp32")
    assert "trainer.recipe.precision=bf16: use fp32" in recipe_problem({"precision": "bf16"}, who)
    assert recipe_problem({"resolution": [[0, 6], [2, 8]]}, who) == (
        "scorer=magic replays no progressive resizing; trainer.recipe.resolution=[[0, 6], "
        "[2, 8]]: use null")
    assert recipe_problem({"optimizer": "sgd", "precision": "fp32"}, who) is None
    assert "precision=auto (bf16 on a GPU): use fp32" in precision_problem("auto", "cuda", who)
    assert precision_problem("auto", "cpu", who) is None
    fast = {"scorer": {"_target_": "brittle.scorers.magic.Magic"},
            "trainer": {"_target_": "brittle.retrain.fast_trainer.FastTrainer", "name": "fast"}}
    assert config_problem(fast) == ("scorer=magic replays the recipe trainer (trainer="
                                    "arch_recipe, paper or cpu); trainer=fast: use "
                                    "trainer=arch_recipe")
    assert config_problem({**fast, "scorer": {"_target_": "brittle.scorers.trak.Trak"}}) is None


def test_scorer_magic_and_the_same_order_lds_through_the_pipeline(tmp_path):
    """A toy run of scorer=magic with eval=lds_same_order: the scores it writes are the mean of
    its seeds' metagradients computed here directly, the first seed is the single run whose
    weighted runs make the same-order bank, and that bank's models are those weighted runs."""
    import numpy as np

    from brittle.api import bank as subset_bank
    from brittle.api import build_engine, load_data
    from brittle.pipeline import run
    from brittle.retrain.weighted import train_weighted
    from brittle.runtime.seeds import single_run_seed
    from brittle.scorers.magic import Magic
    from brittle.stages.bank import margins_of
    from tests.helpers import TINY, make_cfg

    cfg = make_cfg([*TINY, "scorer=magic", "scorer.n_models=2", "eval=lds_same_order",
                    "eval.n_models=4", "progress=false"], cache_dir=tmp_path / "cache")
    summary = run(cfg, tmp_path / "run")
    assert summary.score_cost["n_models"] == 2 and summary.lds is not None
    scores = np.load(tmp_path / "run" / "scores.npy")
    ids = np.load(tmp_path / "run" / "targets.npy")
    engine = build_engine(cfg, load_data(cfg))
    seeds = Magic(n_models=2, seed=int(cfg.seed)).seeds()
    assert seeds[0] == single_run_seed(int(cfg.seed))
    ones = torch.ones(engine.train_x.shape[0])
    tx, ty = engine.test_x[torch.as_tensor(ids)], torch.as_tensor(np.array(engine.test_y[ids]))
    recipe = engine.trainer.recipe
    direct = sum(metagradients(WeightedRun(engine.build, recipe, engine.train_x,
                                           engine.train_y, s), ones, tx, ty) for s in seeds) / 2
    assert scores.shape == (len(ids), engine.train_x.shape[0])
    assert np.allclose(scores, direct.numpy(), rtol=1e-5, atol=1e-7)
    # the same-order bank (cached by the run): model 0 is the single run with its mask
    bank = subset_bank(cfg, engine, 4, 0.99, "lds_same_order")
    assert (bank.masks.sum(1) == round(0.99 * engine.train_x.shape[0])).all()
    w = torch.as_tensor(bank.masks[0], dtype=torch.float32)
    model = train_weighted(engine.build, recipe, engine.train_x, engine.train_y, w, seeds[0])
    expect = margins_of(engine.logits(model, engine.test_x), torch.as_tensor(engine.test_y))
    assert np.array_equal(bank.margins[0], expect.numpy())
    # its own seed stream and cache entry: never the independent LDS bank's subsets
    other = subset_bank(cfg, engine, 4, 0.99, "lds")
    assert not np.array_equal(other.masks, bank.masks)
