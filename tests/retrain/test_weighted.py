"""The weighted training run (brittle/retrain/weighted.py) against brittle's own training and
against torch's loss: w = 1 is `train_one`, weights weight the loss, weight 0 removes."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import MLP
from brittle.retrain.recipe import Recipe
from brittle.retrain.recipe_trainer import train_one
from brittle.retrain.weighted import WeightedRun, train_weighted
from brittle.retrain.weighted_state import weighted_loss


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return normalized(d.train.images, [0.3], [0.4]), torch.as_tensor(d.train.labels)


MLP_256 = functools.partial(MLP, in_shape=[1, 8, 8], num_classes=10, hidden=[256])
# conf/arch/mlp.yaml's recipe, and one with every augmentation, Nesterov and no smoothing
DIGITS = Recipe(epochs=20, batch_size=128, lr=0.1, warmup_fraction=0.2)
AUGMENTED = Recipe(epochs=3, batch_size=64, lr=0.05, nesterov=True, flip=True, translate=1,
                   cutout=3, label_smoothing=0.0)


@pytest.mark.parametrize("recipe", [DIGITS, AUGMENTED], ids=["digits_mlp", "augmented"])
def test_weights_one_is_brittles_own_training_bit_for_bit(digits, recipe):
    """Same initialisation, data order, augmentation and SGD arithmetic as train_one: on a CPU
    the trained parameters are the same bits, so are the logits."""
    x, y = digits
    ours = train_weighted(MLP_256, recipe, x, y, torch.ones(len(y)), seed=11)
    theirs = train_one(MLP_256, recipe, x, y, torch.arange(len(y)), seed=11)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(ours(x[:50]), theirs(x[:50]))


def test_the_weighted_loss_is_torchs_at_one_and_weights_each_image():
    """At w = 1 the same gradient bits as F.cross_entropy; otherwise mean_i w_i l_i with l from
    F.cross_entropy(reduction='none') (an independent reference)."""
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(32, 10, generator=gen, requires_grad=True)
    y = torch.randint(0, 10, (32,), generator=gen)
    for smoothing in (0.0, 0.1):
        ours, = torch.autograd.grad(weighted_loss(out, y, torch.ones(32), smoothing), out)
        ref, = torch.autograd.grad(F.cross_entropy(out, y, label_smoothing=smoothing), out)
        assert torch.equal(ours, ref)
        w = torch.rand(32, generator=gen)
        per_image = F.cross_entropy(out, y, reduction="none", label_smoothing=smoothing)
        assert torch.allclose(weighted_loss(out, y, w, smoothing), (w * per_image).mean(),
                              rtol=1e-6)


def test_weight_zero_removes_an_image_from_every_batch(digits):
    """An image of weight 0 has no effect on the run at all: scrambling its pixels and label
    changes no parameter, while at weight 1 the same scrambling does."""
    x, y = digits
    x2, y2 = x.clone(), y.clone()
    x2[7], y2[7] = torch.randn_like(x[7]) * 3, (y[7] + 1) % 10
    w = torch.ones(len(y))
    w[7] = 0.0
    recipe = Recipe(epochs=2, batch_size=64, lr=0.1)
    a = train_weighted(MLP_256, recipe, x, y, w, seed=3)
    b = train_weighted(MLP_256, recipe, x2, y2, w, seed=3)
    c = train_weighted(MLP_256, recipe, x2, y2, torch.ones(len(y)), seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_the_data_order_is_the_seeds_and_every_image_is_drawn_each_epoch(digits):
    """Each epoch draws every image at most once (the incomplete batch dropped), and the order
    follows the seed alone."""
    x, y = digits
    recipe = Recipe(epochs=2, batch_size=128, lr=0.1)
    run, again = (WeightedRun(MLP_256, recipe, x, y, seed=5) for _ in range(2))
    other = WeightedRun(MLP_256, recipe, x, y, seed=6)
    per_epoch = len(y) // 128
    assert len(run.steps) == 2 * per_epoch
    first = torch.cat([d.index for d in run.steps[:per_epoch]])
    assert len(first.unique()) == per_epoch * 128
    assert all(torch.equal(a.index, b.index) for a, b in zip(run.steps, again.steps))
    assert not torch.equal(run.steps[0].index, other.steps[0].index)
