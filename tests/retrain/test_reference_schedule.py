"""`trainer=paper`'s learning rate at every step against the paper's reference code
(vasusingla/simple-data-attribution, train_utils.py `train()`), whose schedule is written out here
from that code, not from brittle's: SGD built at lr 0.5 and a LambdaLR whose factor for step i
(the optimiser's i-th step, from 0) is
    np.interp(i, [0, 5 * iters_per_epoch, epochs * iters_per_epoch], [0, 1, 0])
with iters_per_epoch = 50000 // batch_size whatever was removed, while its FFCV loader over the
kept indices drops the incomplete batch (kept // batch_size steps an epoch)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from brittle.retrain import recipe_trainer, stacked
from brittle.retrain.recipe import Recipe
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import run_identity
from brittle.stages import reference
from brittle.stages.keys import key_of, select
from tests.helpers import make_cfg

N_TRAIN = 50_000


def _reference_lrs(n_kept: int, batch_size: int = 512, epochs: int = 24) -> np.ndarray:
    """The reference's lr at each step it takes on n_kept images, float64 [steps]."""
    iters_per_epoch = N_TRAIN // batch_size
    factors = np.interp(np.arange((epochs + 1) * iters_per_epoch),
                        [0, 5 * iters_per_epoch, epochs * iters_per_epoch], [0, 1, 0])
    steps = epochs * (n_kept // batch_size)
    return 0.5 * factors[:steps]


def _paper_recipe() -> Recipe:
    """trainer=paper's recipe, without augmentation and in fp32 (images of 1 pixel, a CPU)."""
    recipe = instantiate(make_cfg(["trainer=paper"]).trainer).recipe
    return dataclasses.replace(recipe, flip=False, translate=0, cutout=0, precision="fp32")


def _recorded_lrs(monkeypatch, module, train) -> list[float]:
    """The lr of every optimiser step that `train()` takes through `module.optimizer_for`."""
    lrs: list[float] = []
    real = module.optimizer_for

    def recording(*args, **kwargs):
        opt = real(*args, **kwargs)
        step = opt.step

        def logged(*a, **k):
            lrs.append(opt.param_groups[0]["lr"])
            return step(*a, **k)
        opt.step = logged
        return opt
    monkeypatch.setattr(module, "optimizer_for", recording)
    train()
    return lrs


def _data(n_kept: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x float [50000, 1, 1, 1], labels int64 [50000], keep int64 [n_kept]: 1,280 removed."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN, 1, 1, 1, generator=gen)
    labels = torch.randint(0, 10, (N_TRAIN,), generator=gen)
    keep = torch.randperm(N_TRAIN, generator=gen)[:n_kept].sort().values
    return x, labels, keep


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(1, 10))


@pytest.mark.parametrize("n_kept", [48_720, N_TRAIN])
def test_paper_recipe_follows_the_reference_lr_at_every_step(monkeypatch, n_kept):
    recipe = _paper_recipe()
    x, labels, keep = _data(n_kept)
    lrs = _recorded_lrs(monkeypatch, recipe_trainer, lambda: recipe_trainer.train_one(
        _mlp, recipe, x, labels, keep, seed=0))
    theirs = _reference_lrs(n_kept)
    assert len(lrs) == len(theirs) == 24 * (n_kept // 512)
    assert lrs[0] == 0.0
    np.testing.assert_allclose(lrs, theirs, rtol=0, atol=1e-12)
    # the stacked path (the MLPs of a test trained as one network) takes the same schedule
    stacked_lrs = _recorded_lrs(monkeypatch, stacked, lambda: stacked.train_stacked(
        _mlp, recipe, x, labels, keep, seeds=[0, 1]))
    np.testing.assert_allclose(stacked_lrs, theirs, rtol=0, atol=1e-12)


def test_the_actual_schedule_spans_the_models_own_steps(monkeypatch):
    """brittle's default: 48,720 kept images warm up and decay to 0 over their own 2,280 steps,
    which is not the reference's schedule (so the test above can fail)."""
    recipe = dataclasses.replace(_paper_recipe(), schedule="actual")
    x, labels, keep = _data(48_720)
    lrs = _recorded_lrs(monkeypatch, recipe_trainer, lambda: recipe_trainer.train_one(
        _mlp, recipe, x, labels, keep, seed=0))
    total = 24 * 95
    warm = round(5 / 24 * total)
    assert len(lrs) == total and lrs[0] == pytest.approx(0.5 / warm)
    assert lrs[warm - 1] == pytest.approx(0.5) and lrs[-1] == pytest.approx(0.5 / (total - warm))
    assert np.abs(np.array(lrs) - _reference_lrs(48_720)).max() > 0.01


def test_the_default_schedule_is_written_out_and_leaves_every_key():
    """Every recipe writes its schedule (conf/_common/recipe.yaml: actual); a key leaves the
    default out (brittle/runtime/defaults.py), so every config but the paper presets' keeps the
    keys it had before the setting existed."""
    for overrides in ([], ["arch=cnn"], ["arch=resnet9_ffcv"], ["trainer=cpu", "arch=vit"],
                      ["experiment=paper_imagenet", "dataset.root=/data/imagenet"]):
        cfg = make_cfg(overrides)
        assert cfg.trainer.recipe.schedule == cfg.arch.recipe.schedule == "actual"
        key = key_of(select(cfg, reference.DEPENDS_ON))
        assert not {"schedule"} & {*key["trainer"]["recipe"], *key["arch"]["recipe"]}
    paper = make_cfg(["trainer=paper"])
    assert key_of(select(paper, reference.DEPENDS_ON))["trainer"]["recipe"]["schedule"] == \
        "reference"
    assert run_identity(paper)["trainer"]["recipe"]["schedule"] == "reference"
    transfer = make_cfg(["experiment=paper_transfer", "dataset.root=/data/cifar10"])
    assert transfer.arch.recipe.schedule == transfer.source_arch.recipe.schedule == "reference"


def test_an_unknown_schedule_is_one_clear_error():
    with pytest.raises(BrittleError, match=r"trainer.recipe.schedule=fixed is not valid; use one "
                                           r"of actual, reference"):
        Recipe(epochs=1, batch_size=1, lr=0.1, schedule="fixed")
