"""Several models trained at once (trainer.together=streams | vmap) are the models trained one
at a time: the same decisions on digits with the digits CNN, bit for bit when interleaved on a
CPU, within float rounding when vmapped; and a model does not depend on its companions."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from brittle.data.datasets import load_digits, normalized
from brittle.retrain.airnet import AirNet
from brittle.retrain.arches import SmallCNN
from brittle.retrain.fast_trainer import FastTrainer
from brittle.retrain.recipe_trainer import RecipeTrainer
from brittle.retrain.trainer import Job
from brittle.retrain.vmapped import _stack, _stack_inputs
from brittle.runtime.errors import BrittleError
from tests.helpers import make_cfg


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = normalized(data.train.images, [0.3], [0.4])
    xt = normalized(data.test.images, [0.3], [0.4])
    return x, torch.as_tensor(data.train.labels), xt, data.test.labels


def _jobs(y: torch.Tensor) -> list[Job]:
    """Three counterfactual tests of one lockstep round (two removals of equal size, a
    mislabelling) with 2-3 models each, and a removal of another size with one model."""
    n = len(y)
    relabelled = y.clone()
    relabelled[:60] = (y[:60] + 1) % 10
    a, full = torch.arange(60, n), torch.arange(n)
    b = torch.cat([torch.arange(60), torch.arange(120, n)])
    return [Job(a, y, 11), Job(a, y, 12), Job(a, y, 13), Job(b, y, 21), Job(b, y, 22),
            Job(full, relabelled, 31), Job(full, relabelled, 32), Job(torch.arange(30, n), y, 41)]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}


@pytest.mark.parametrize("mode", ["streams", "vmap"])
def test_concurrent_cnns_make_the_decisions_of_one_at_a_time(digits, mode):
    """arch=cnn with its digits recipe (flip off, translate, cutout as configured), 3 epochs:
    every test's majority decision on the first 40 test images equals one-at-a-time training's."""
    x, y, xt, yt = digits
    recipe = make_cfg(["arch=cnn"]).arch.recipe
    build = lambda: SmallCNN([1, 8, 8], 10)  # noqa: E731
    jobs = _jobs(y)
    alone = RecipeTrainer(recipe, together="loop", epochs=3)
    together = RecipeTrainer(recipe, together=mode, epochs=3, concurrent=4)
    ref = [alone.logits(m, xt) for m in alone.train_jobs(build, x, jobs)]
    got = [together.logits(m, xt) for m in together.train_jobs(build, x, jobs)]
    for a, b in zip(ref, got):
        if mode == "streams":   # interleaving on a CPU is the same arithmetic
            assert torch.equal(a, b)
        else:   # batched kernels round otherwise; over 3 epochs that drifts by a CPU's rounding
            assert (a - b).abs().max() <= 0.05 * a.abs().max(), (a - b).abs().max()
    def correct(outs):
        return np.stack([out.argmax(1).numpy() == yt for out in outs])[:, :40]

    for test in ([0, 1, 2], [3, 4], [5, 6], [7]):
        assert np.array_equal(correct(ref)[test].mean(0) > 0.5, correct(got)[test].mean(0) > 0.5)
    assert not torch.allclose(got[0], got[1], atol=1e-2)   # seeds 11 and 12 are different models


@pytest.mark.parametrize("mode", ["streams", "vmap"])
def test_a_models_weights_do_not_depend_on_its_companions(digits, mode):
    x, y, _, _ = digits
    keep = torch.arange(0, len(y), 2)
    build = lambda: SmallCNN([1, 8, 8], 10, width=8)  # noqa: E731
    trainer = RecipeTrainer({"epochs": 2, "batch_size": 64, "lr": 0.1, "flip": True, "translate": 1,
                             "cutout": 3}, together=mode)
    alone = _state(trainer.train_one(build, x, y, keep, 7))
    in_three = _state(trainer.train(build, x, y, keep, [5, 7, 9])[1])
    first_of_two = _state(trainer.train(build, x, y, keep, [7, 3])[0])
    for other in (in_three, first_of_two):
        for name, value in alone.items():
            if mode == "streams":
                assert torch.equal(value, other[name]), name
            else:
                assert torch.allclose(value, other[name], atol=1e-5, rtol=1e-5), name


@pytest.mark.parametrize("mode", ["streams", "vmap"])
def test_fast_trainer_trains_airnets_together_as_alone(digits, mode):
    """The fast procedure (whitening init, bias groups, EMA lookahead, alternating flips)."""
    x, y, xt, _ = digits
    build = lambda: AirNet([1, 8, 8], 10, width=8)  # noqa: E731
    jobs = _jobs(y)[:5]
    alone = FastTrainer(epochs=3, batch_size=64, translate=1, tta_level=0)
    together = FastTrainer(epochs=3, batch_size=64, translate=1, tta_level=0, together=mode)
    for a, b in zip(alone.train_jobs(build, x, jobs), together.train_jobs(build, x, jobs)):
        la, lb = alone.logits(a, xt), together.logits(b, xt)
        assert torch.equal(la, lb) if mode == "streams" else torch.allclose(la, lb, atol=1e-4)


def test_archs_with_dropout_and_bad_settings_are_refused(digits):
    x, y, _, _ = digits

    def build():
        nn = torch.nn
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 10))

    with pytest.raises(BrittleError, match="trainer.together=vmap needs an arch without dropout"):
        RecipeTrainer({"epochs": 1, "batch_size": 50, "lr": 0.1}, together="vmap").train(
            build, x, y, torch.arange(100), [1, 2])
    with pytest.raises(BrittleError, match="trainer.together=threads is not valid"):
        FastTrainer(together="threads")
    with pytest.raises(BrittleError, match="trainer.concurrent=0 is not valid"):
        RecipeTrainer({"epochs": 1, "batch_size": 50, "lr": 0.1}, together="vmap", concurrent=0)


def test_channels_last_stacking_is_a_plain_stack_with_the_grouped_convolution_layout():
    """The layouts run_vmapped uses on CUDA: the values of torch.stack, and once vmap folds the
    models into the channels ([B, M * C, H, W]) a channels-last tensor without a copy."""
    cl = torch.channels_last
    weights = [torch.randn(6, 4, 3, 3).contiguous(memory_format=cl) for _ in range(3)]
    w = _stack(weights, channels_last=True)
    assert torch.equal(w, torch.stack(weights)) and w.flatten(0, 1).is_contiguous(memory_format=cl)
    images = [torch.randn(5, 4, 7, 7).contiguous(memory_format=cl) for _ in range(3)]
    xs, axis = _stack_inputs(images, channels_last=True)
    assert axis == 1 and torch.equal(xs.movedim(1, 0), torch.stack(images))
    folded = xs.flatten(1, 2)   # what vmap's convolution rule makes of it
    assert folded.data_ptr() == xs.data_ptr() and folded.is_contiguous(memory_format=cl)


def test_an_overflowing_model_skips_its_own_step_only():
    """Each vmapped model keeps its gradient scaler: an fp16-style overflow (here a scale so
    large that the scaled loss is infinite) skips that model's step and no other's."""
    from brittle.retrain.loop import Pending, build_seeded
    from brittle.retrain.vmapped import run_vmapped

    build = lambda: torch.nn.Linear(4, 3)  # noqa: E731
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    models = [build_seeded(build, s, torch.device("cpu")) for s in (1, 2)]
    before = [m.weight.detach().clone() for m in models]

    def fit(model, init_scale):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        opt.zero_grad()
        yield Pending(x, y, torch.nn.functional.cross_entropy, scaler.scale)
        scaler.step(opt)
        scaler.update()

    run_vmapped(models, [fit(models[0], float("inf")), fit(models[1], 1.0)], contextlib.nullcontext)
    assert torch.equal(models[0].weight, before[0]) and not torch.equal(models[1].weight, before[1])


def test_vmapped_resnet_in_the_cuda_layout_trains_as_alone():
    """The channels-last layout run_vmapped takes on CUDA, forced on a CPU: ResNet-9 (FFCV) with
    residuals, pooling and batch norm trains as each model alone; its running statistics end in
    storage of its own (not a slice of the stack)."""
    from brittle.retrain.arches import ResNet9FFCV
    from brittle.retrain.loop import build_seeded
    from brittle.retrain.vmapped import run_vmapped

    cl, gen = torch.channels_last, torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, 12, 12, generator=gen).contiguous(memory_format=cl)
    y, keep = torch.randint(0, 10, (96,), generator=gen), torch.arange(96)
    build = lambda: ResNet9FFCV([3, 12, 12], 10, width=4)  # noqa: E731
    trainer = RecipeTrainer({"epochs": 2, "batch_size": 32, "lr": 0.05, "flip": True,
                             "translate": 2, "translate_fill": [0.1, 0.2, 0.3],
                             "cutout": 4, "cutout_inside": True})
    seeds = (1, 2, 3)
    models = [build_seeded(build, s, torch.device("cpu")).to(memory_format=cl) for s in seeds]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    fits = [trainer.fit(m, x, y, keep, g) for m, g in zip(models, gens)]
    run_vmapped(models, fits, contextlib.nullcontext, channels_last=True)
    for seed, model in zip(seeds, models):
        alone = _state(trainer.train_one(build, x, y, keep, seed))
        for name, value in _state(model).items():
            # rounding differs (grouped convolutions), and grows: on other data up to 3e-3
            assert torch.allclose(value, alone[name], atol=1e-3, rtol=1e-3), name
    stats = models[1][0][1].running_mean
    assert stats.untyped_storage().nbytes() == stats.numel() * stats.element_size()
