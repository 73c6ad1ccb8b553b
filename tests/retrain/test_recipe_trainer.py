"""Retraining: batched augmentation, per-seed determinism, and real accuracy on digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.arches import MLP, ResNet9, SmallCNN
from brittle.retrain.augment import augment
from brittle.retrain.recipe import Recipe, lr_at
from brittle.retrain.recipe_trainer import train_one
from brittle.retrain.trainer import logits, margin


def _digits():
    data = load_digits()
    x = normalized(data.train.images, [0.3], [0.4])
    xt = normalized(data.test.images, [0.3], [0.4])
    return x, torch.as_tensor(data.train.labels), xt, data.test.labels


def test_translate_shifts_whole_images_and_cutout_zeroes_a_square():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    gen = torch.Generator().manual_seed(0)
    shifted = augment(x, Recipe(epochs=1, batch_size=1, lr=0.1, translate=2), gen)
    for b in range(2):
        # every non-padding pixel keeps its neighbour relation: rows of the original appear intact
        nz = shifted[b, 0][shifted[b, 0] != 0]
        assert len(nz) >= 16 and set(nz.tolist()) <= set(x[b, 0].flatten().tolist())
    cut = augment(x, Recipe(epochs=1, batch_size=1, lr=0.1, cutout=2),
                  torch.Generator().manual_seed(1))
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert ((zeros >= 1) & (zeros <= 4)).all()
    flipped = augment(x, Recipe(epochs=1, batch_size=1, lr=0.1, flip=True),
                      torch.Generator().manual_seed(2))
    for b in range(2):
        assert torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(2))


def test_schedule_warms_up_then_decays_to_zero():
    r = Recipe(epochs=24, batch_size=1, lr=0.5, warmup_fraction=5 / 24)
    lrs = [lr_at(s, 240, r) for s in range(240)]
    assert max(lrs) == 0.5 and np.argmax(lrs) == 49 and lrs[-1] < 0.01 and lrs[0] < 0.02


def test_same_seed_same_model_different_seed_different_model():
    x, y, xt, _ = _digits()
    keep = torch.arange(len(y))
    recipe = Recipe(epochs=2, batch_size=128, lr=0.1, translate=1)
    build = lambda: MLP([1, 8, 8], 10, hidden=[32])  # noqa: E731
    a = logits(train_one(build, recipe, x, y, keep, seed=5), xt)
    b = logits(train_one(build, recipe, x, y, keep, seed=5), xt)
    c = logits(train_one(build, recipe, x, y, keep, seed=6), xt)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_models_learn_digits():
    x, y, xt, yt = _digits()
    keep = torch.arange(len(y))
    for build, epochs in ((lambda: MLP([1, 8, 8], 10), 20), (lambda: SmallCNN([1, 8, 8], 10), 8)):
        model = train_one(build, Recipe(epochs=epochs, batch_size=128, lr=0.1), x, y, keep, seed=0)
        acc = (logits(model, xt).argmax(1).numpy() == yt).mean()
        assert acc > 0.93, acc


def test_resnet9_shapes_on_cifar_and_digits_sizes():
    for shape in ([3, 32, 32], [1, 8, 8]):
        net = ResNet9(shape, 10, width=8)
        assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_margin_is_correct_minus_best_other():
    assert margin(torch.tensor([1.0, 3.0, 2.0]), 1) == 1.0
    assert margin(torch.tensor([1.0, 3.0, 2.0]), 0) == -2.0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_stacked_mlps_follow_their_solo_trajectories(precision):
    """Five MLPs trained as one stacked network equal each one trained alone (same seed), in
    fp32 and under bf16 autocast (the CUDA default: both paths follow one precision policy)."""
    from brittle.retrain.stacked import stackable, train_stacked

    x, y, xt, _ = _digits()
    keep = torch.arange(0, len(y), 2)                   # a removal-style subset
    recipe = Recipe(epochs=3, batch_size=64, lr=0.1, translate=1, nesterov=True,
                    precision=precision)

    def build():
        return MLP([1, 8, 8], 10, hidden=[64, 32])

    assert stackable(build()) and not stackable(SmallCNN([1, 8, 8], 10))
    seeds = [11, 12, 13, 14, 15]
    together = train_stacked(build, recipe, x, y, keep, seeds)
    tol = 1e-3
    for seed, model in zip(seeds, together):
        alone = train_one(build, recipe, x, y, keep, seed)
        a, b = logits(model, xt, precision=precision), logits(alone, xt, precision=precision)
        assert torch.allclose(a, b, atol=tol, rtol=tol), (a - b).abs().max()
    assert not torch.allclose(logits(together[0], xt), logits(together[1], xt), atol=5e-2)
    if precision == "bf16":  # and bf16 really trained another model than fp32 would have
        fp32 = train_one(build, Recipe(**{**recipe.__dict__, "precision": "fp32"}), x, y, keep,
                         seeds[0])
        assert (logits(fp32, xt) - logits(together[0], xt, precision="fp32")).abs().max() > 10 * tol


def test_recipe_trainer_stacks_only_mlps():
    import pytest

    from brittle.retrain.recipe_trainer import RecipeTrainer
    from brittle.runtime.errors import BrittleError

    x, y, _, _ = _digits()
    keep = torch.arange(200)
    trainer = RecipeTrainer({"epochs": 1, "batch_size": 50, "lr": 0.1}, together="stacked")
    assert len(trainer.train(lambda: MLP([1, 8, 8], 10), x, y, keep, [1, 2])) == 2
    with pytest.raises(BrittleError, match="trainer.together=stacked needs an MLP"):
        trainer.train(lambda: SmallCNN([1, 8, 8], 10), x, y, keep, [1, 2])
    with pytest.raises(BrittleError, match="trainer recipe is not valid"):
        RecipeTrainer({"epochs": 1, "batch_size": 50, "lr": 0.1, "epoch": 3})


def test_dropout_is_seeded_and_the_global_rng_left_alone():
    """Archs with dropout (MobileNetV2, ...) are deterministic per seed too."""
    x, y, xt, _ = _digits()
    keep = torch.arange(300)

    def build():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                   torch.nn.Dropout(0.5), torch.nn.Linear(64, 10))

    recipe = Recipe(epochs=2, batch_size=50, lr=0.1)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = logits(train_one(build, recipe, x, y, keep, seed=4), xt)
    assert torch.equal(torch.rand(1), before)             # global stream untouched
    b = logits(train_one(build, recipe, x, y, keep, seed=4), xt)
    assert torch.equal(a, b)
