"""BatchNorm in the weighted run (brittle/retrain/batchstats.py): MAGIC's metagradients of a CNN
with BatchNorm against finite differences of retraining, its replay against the forward run bit
for bit, running statistics included, and the run at weight 1 against brittle's own training."""
from __future__ import annotations

import functools

import pytest
import torch

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import SmallCNN
from brittle.retrain.metagradient import forward, margins, metagradients, replay
from brittle.retrain.recipe import Recipe
from brittle.retrain.recipe_trainer import train_one
from brittle.retrain.weighted import WeightedRun

TINY_CNN = functools.partial(SmallCNN, in_shape=[1, 8, 8], num_classes=10, width=4)
RECIPE = Recipe(epochs=3, batch_size=16, lr=0.05, translate=1)


@pytest.fixture(scope="module")
def tiny():
    """64 digits training images and 3 test targets, float64."""
    d = load_digits()
    x = normalized(d.train.images[:64], [0.3], [0.4]).double()
    tx = normalized(d.test.images[:3], [0.3], [0.4]).double()
    return x, torch.as_tensor(d.train.labels[:64]), tx, torch.as_tensor(d.test.labels[:3])


def _margins_after(run: WeightedRun, w: torch.Tensor, tx, ty) -> torch.Tensor:
    final, _ = run.run(w)
    return margins(run.readout(final, tx), ty)


@pytest.mark.parametrize("every", [None, 1], ids=["sqrt_replay", "every_state_kept"])
def test_metagradients_through_batchnorm_match_finite_differences(tiny, every):
    """The margins read out in eval mode (the running statistics the run built): their central
    difference under +-eps on one image's weight is the metagradient (relative error < 1e-3)."""
    x, y, tx, ty = tiny
    run = WeightedRun(TINY_CNN, RECIPE, x, y, seed=5)
    w = torch.ones(len(y), dtype=torch.float64)
    grads = metagradients(run, w, tx, ty, forward(run, w, every))
    eps = 1e-5
    for i in (0, 9, 33, 63):
        e = torch.zeros_like(w)
        e[i] = eps
        fd = (_margins_after(run, w + e, tx, ty) - _margins_after(run, w - e, tx, ty)) / (2 * eps)
        assert torch.allclose(grads[:, i], fd, rtol=1e-3, atol=1e-7), (i, grads[:, i], fd)
    assert grads.abs().max() > 1e-3   # the images matter: the test can fail


def test_the_replay_recomputes_the_running_statistics_bit_for_bit(tiny):
    x, y, _, _ = tiny
    run = WeightedRun(TINY_CNN, RECIPE, x, y, seed=5)
    w = torch.rand(len(y), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fwd = forward(run, w, every=3)
    _, every_state = run.run(w, keep=1)
    for start in fwd.kept:
        for j, state in enumerate(replay(run, w, fwd, start)):
            kept = every_state[start + j]
            assert state.running is not None and kept.running is not None
            for a, b in zip((*state.params, *state.running), (*kept.params, *kept.running)):
                assert torch.equal(a, b)


def test_at_weight_one_the_run_is_brittles_own_training(tiny):
    """Parameters bit for bit as train_one trains them (torch's BatchNorm normalises both), the
    running statistics to float rounding (the run computes them from the layers' inputs)."""
    x, y, tx, _ = tiny
    run = WeightedRun(TINY_CNN, RECIPE, x, y, seed=5)
    final, _ = run.run(torch.ones(len(y), dtype=torch.float64))
    own = train_one(lambda: TINY_CNN().double(), RECIPE, x, y, torch.arange(len(y)), seed=5)
    for a, b in zip(final.params, own.parameters()):
        assert torch.equal(a, b)
    ours = run.module(final)
    torch.testing.assert_close(ours(tx), own(tx), rtol=1e-10, atol=1e-10)
