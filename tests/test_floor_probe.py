"""The throughput probes the GPU check reports (bench/gpu/floor_probe.py), at a CPU's tiny size:
the images a recipe's model sees counted by hand, the floor ratio's arithmetic, and the
together-modes comparison on the same seeds."""
from __future__ import annotations

import math

import pytest
import torch

from bench.gpu.floor_probe import compare_together, floor_report, step_floor
from brittle.data.datasets import load_digits, normalized
from brittle.retrain.airnet import AirNet
from brittle.retrain.arches import ResNet9FFCV, SmallCNN
from brittle.retrain.engine import Engine
from brittle.retrain.fast_trainer import FastTrainer
from brittle.retrain.recipe_trainer import RecipeTrainer

CPU = torch.device("cpu")


def _engine(build, trainer, n: int = 300) -> Engine:
    data = load_digits()
    x = normalized(data.train.images[:n], [0.3], [0.4])
    xt = normalized(data.test.images[:50], [0.3], [0.4])
    y = torch.as_tensor(data.train.labels[:n])
    return Engine(build, trainer, x, y, xt, data.test.labels[:50])


@pytest.mark.parametrize("build", [lambda: ResNet9FFCV([3, 16, 16], 10, width=4),
                                   lambda: AirNet([3, 16, 16], 10, width=4)])
def test_step_floor_times_real_training_steps(build):
    rate = step_floor(build, [3, 16, 16], 10, batch_size=16, device=CPU, steps=2, warmup=1)
    assert math.isfinite(rate) and rate > 0


@pytest.mark.parametrize("trainer,images", [
    # 300 images in batches of 64: 4 steps an epoch (the last 44 images dropped), 2 epochs
    (RecipeTrainer({"epochs": 2, "batch_size": 64, "lr": 0.1}, together="loop"), 8 * 64),
    # 1.5 epochs: 6 steps
    (FastTrainer(epochs=1.5, batch_size=64, tta_level=0), 6 * 64),
])
def test_floor_report_counts_a_models_images_and_divides(trainer, images):
    build = (lambda: SmallCNN([1, 8, 8], 10, width=4)) if isinstance(trainer, RecipeTrainer) \
        else (lambda: AirNet([1, 8, 8], 10, width=4))
    report = floor_report(_engine(build, trainer), seeds=[0, 1], steps=2)
    assert report["images_per_model"] == images and report["batch_size"] == 64
    assert report["floor_seconds"] == pytest.approx(images / report["floor_images_per_second"])
    assert report["seconds_per_model"] == pytest.approx(sum(report["seconds"]) / 2)
    assert report["ratio"] == pytest.approx(report["seconds_per_model"] / report["floor_seconds"])


def test_compare_together_trains_the_same_models_in_each_mode():
    recipe = {"epochs": 1, "batch_size": 64, "lr": 0.1, "translate": 1}
    trainer = RecipeTrainer(recipe, together="auto")
    report = compare_together(_engine(lambda: SmallCNN([1, 8, 8], 10, width=4), trainer),
                              n_models=3, concurrent=2)
    assert list(report) == ["loop", "streams", "vmap"] and report["loop"]["speedup"] == 1.0
    assert report["streams"]["test_agreement_min"] == 1.0
    assert report["vmap"]["test_agreement_min"] > 0.95
    for mode in report.values():
        assert mode["models_per_second"] == pytest.approx(3 / mode["seconds"])
    assert trainer.together == "auto"   # the engine's own trainer is left as it was
