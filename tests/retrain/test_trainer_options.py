"""The `trainer=` group: every option composes and trains; the airbench-class trainer and its
network checked against independent computations (numpy covariance) and on real digits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.airnet import AirNet
from brittle.retrain.arches import mobilenet_v2
from brittle.retrain.fast_trainer import FastTrainer, _triangle
from brittle.retrain.recipe_trainer import RecipeTrainer
from tests.helpers import make_cfg


@pytest.mark.parametrize("option,cls,epochs", [("arch_recipe", RecipeTrainer, 20),
                                               ("paper", RecipeTrainer, 24),
                                               ("cpu", RecipeTrainer, 6),
                                               ("fast", FastTrainer, 9.9)])
def test_every_trainer_option_instantiates(option, cls, epochs):
    trainer = instantiate(make_cfg([f"trainer={option}"]).trainer)
    assert isinstance(trainer, cls)
    assert (trainer.recipe.epochs if cls is RecipeTrainer else trainer.epochs) == epochs


def test_paper_trainer_is_the_design_recipe():
    r = instantiate(make_cfg(["trainer=paper", "arch=resnet9"]).trainer).recipe
    recipe = (r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay, r.label_smoothing)
    assert recipe == (24, 512, 0.5, 0.9, 5e-4, 0.1)
    assert ((r.flip, r.translate, r.cutout) == (True, 2, 8)
            and abs(r.warmup_fraction * 24 - 5) < 1e-6)


def test_whitening_init_whitens_the_patches():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(3, 3))
    images = torch.tensor(np.einsum("ij,njhw->nihw", mix, rng.normal(size=(400, 3, 12, 12))),
                          dtype=torch.float32)
    net = AirNet([3, 12, 12], 10, width=8)
    net.init_whitening(images, eps=0.0)
    with torch.no_grad():
        # the +eigenvector half
        out = torch.nn.functional.conv2d(images, net.whiten.weight)[:, :12]
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12).numpy().astype(np.float64)
    cov = flat.T @ flat / len(flat)            # uncentred, as the patch covariance is
    assert np.allclose(cov, np.eye(12), atol=0.05)


def test_lr_triangle():
    assert _triangle(0, 100) == pytest.approx(0.2)
    assert _triangle(23, 100) == pytest.approx(1.0)
    assert _triangle(100, 100) == pytest.approx(0.07)


def test_fast_trainer_learns_digits_and_is_deterministic():
    data = load_digits()
    x, xt = normalized(data.train.images, [0.3], [0.4]), normalized(data.test.images, [0.3], [0.4])
    y = torch.as_tensor(data.train.labels)
    build = lambda: AirNet([1, 8, 8], 10, width=16)  # noqa: E731
    short = FastTrainer(epochs=1, batch_size=64, flip=True, translate=1)
    a, b = short.train(build, x, y, torch.arange(256), [3, 3])
    assert torch.equal(short.logits(a, xt), short.logits(b, xt))
    trainer = FastTrainer(epochs=10, batch_size=128, flip=False, translate=1)
    logits = trainer.logits(trainer.train(build, x, y, torch.arange(len(y)), [3])[0], xt)
    assert logits.shape == (len(xt), 10)
    assert (logits.argmax(1).numpy() == data.test.labels).mean() > 0.9


@pytest.mark.parametrize("size,grid", [(8, 2), (32, 4)])
def test_mobilenet_keeps_a_spatial_grid_on_small_images(size, grid):
    net = mobilenet_v2([3, size, size], 10, width_mult=0.25)
    assert net.features(torch.zeros(2, 3, size, size)).shape[2:] == (grid, grid)
