"""The fast recipe's whitening is initialised from a sample of every class, as airbench's first
images of the official CIFAR-10 order are, also when the dataset is sorted by class."""
from __future__ import annotations

import torch

from brittle.retrain.airnet import AirNet
from brittle.retrain.fast_trainer import FastTrainer


def test_whitening_sample_is_drawn_from_all_kept_images_not_the_first(monkeypatch):
    seen: list[torch.Tensor] = []
    real = AirNet.init_whitening

    def recording(self, images, *args, **kwargs):
        seen.append(images.clone())
        return real(self, images, *args, **kwargs)
    monkeypatch.setattr(AirNet, "init_whitening", recording)
    labels = torch.arange(10).repeat_interleave(40)      # class-sorted: 40 images a class
    x = labels[:, None, None, None].float().expand(400, 3, 8, 8).contiguous() / 10
    x = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    trainer = FastTrainer(epochs=1, batch_size=100, whiten_images=50, tta_level=0)
    build = lambda: AirNet([3, 8, 8], 10, width=8)  # noqa: E731
    trainer.train(build, x, labels, torch.arange(400), [3])
    (sample,) = seen
    classes = torch.unique((sample[:, 0, 0, 0] * 10).round())
    assert sample.shape[0] == 50 and len(classes) >= 8, classes   # not the first 50: one class
