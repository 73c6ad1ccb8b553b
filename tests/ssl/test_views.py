"""Batched device views have lightly's augmentation distributions: crop parameters against
torchvision's sampler, and image statistics of many views of one fixed image through both."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp

from brittle.runtime.errors import BrittleError
from brittle.ssl.views import DeviceViews, crop_boxes, view_specs

N = 1500


def _image(channels: int, size: int) -> np.ndarray:
    """A fixed image with structure everywhere: ramps and colour, uint8 [C, H, W]."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    planes = [0.15 + 0.7 * xx, 0.1 + 0.8 * yy * xx, 0.9 - 0.6 * yy][:channels]
    return np.clip(np.rint(np.stack(planes) * 255), 0, 255).astype(np.uint8)


def _stats(views: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per view: mean brightness, contrast (std), horizontal gradient (flips), channel spread."""
    v = np.stack(views)                         # [N, C, s, s] in [0, 1]
    return {"mean": v.mean((1, 2, 3)), "std": v.std((1, 2, 3)),
            "x_gradient": (v[..., -1] - v[..., 0]).mean((1, 2)),
            "channel_spread": v.mean((2, 3)).std(1)}


def _lightly_views(transform: dict, image: np.ndarray, view: int) -> list[np.ndarray]:
    from hydra.utils import instantiate
    t = instantiate(transform)
    pil = Image.fromarray(image[0]) if image.shape[0] == 1 else Image.fromarray(image.transpose(1, 2, 0))
    torch.manual_seed(0)
    return [t(pil)[view].numpy() for _ in range(N)]


def _device_views(transform: dict, image: np.ndarray, view: int) -> list[np.ndarray]:
    views = DeviceViews(view_specs(transform), image.shape[0])
    torch.manual_seed(1)
    batch = torch.from_numpy(np.repeat(image[None], N, axis=0))
    return list(views(batch)[view].numpy())


CASES = {
    "cifar_moco": {"_target_": "lightly.transforms.MoCoV2Transform", "input_size": 32, "cj_strength": 0.5,
                   "gaussian_blur": 0.5, "hf_prob": 0.5, "normalize": None},
    "digits_moco": {"_target_": "lightly.transforms.MoCoV2Transform", "input_size": 8, "min_scale": 0.5,
                    "cj_prob": 0.8, "cj_strength": 0.5, "random_gray_scale": 0.0, "gaussian_blur": 0.0,
                    "hf_prob": 0.0, "normalize": None},
    "cifar_simclr": {"_target_": "lightly.transforms.SimCLRTransform", "input_size": 32, "normalize": None},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_view_statistics_match_lightly(case):
    transform = CASES[case]
    channels = 1 if case.startswith("digits") else 3
    image = _image(channels, int(transform["input_size"]))
    ours, theirs = _stats(_device_views(transform, image, 0)), _stats(_lightly_views(transform, image, 0))
    for name in ours:
        if channels == 1 and name == "channel_spread":
            continue
        stat = ks_2samp(ours[name], theirs[name])
        # two samples of 1500 from one distribution: D above 0.08 happens with p < 0.001; lightly
        # rounds an 8x8 image to uint8 after every PIL step, which alone moves D to ~0.1 there
        assert stat.statistic < (0.08 if channels == 3 else 0.12), (case, name, stat)


def test_crop_parameters_follow_torchvision():
    from torchvision.transforms import RandomResizedCrop
    torch.manual_seed(0)
    img = torch.zeros(3, 24, 32)
    ref = np.array([RandomResizedCrop.get_params(img, (0.2, 1.0), (3 / 4, 4 / 3)) for _ in range(4000)], float)
    ours = crop_boxes(4000, 24, 32, (0.2, 1.0), (3 / 4, 4 / 3), torch.device("cpu")).numpy()
    for a, b in ((ref, ours),):
        for fn in (lambda z: z[:, 2] * z[:, 3] / (24 * 32), lambda z: z[:, 3] / z[:, 2], lambda z: z[:, 0],
                   lambda z: z[:, 1]):
            assert ks_2samp(fn(a), fn(b)).statistic < 0.05
    assert (ours[:, 0] + ours[:, 2] <= 24).all() and (ours[:, 1] + ours[:, 3] <= 32).all()


def test_dino_views_match_lightlys_shapes_and_count():
    from hydra.utils import instantiate
    dino = {"_target_": "lightly.transforms.DINOTransform", "global_crop_size": 32, "local_crop_size": 16,
            "n_local_views": 3, "normalize": None}
    image = _image(3, 32)
    theirs = instantiate(dino)(Image.fromarray(image.transpose(1, 2, 0)))
    ours = DeviceViews(view_specs(dino), 3)(torch.from_numpy(image[None]).repeat(4, 1, 1, 1))
    assert [tuple(v.shape) for v in theirs] == [tuple(v.shape[1:]) for v in ours]
    specs = view_specs(dino)
    assert [s.blur_prob for s in specs[:3]] == [1.0, 0.1, 0.5] and specs[1].solarize_prob == 0.2


def test_views_are_independent_per_image_and_view():
    spec = view_specs(CASES["cifar_moco"])
    views = DeviceViews(spec, 3)(torch.from_numpy(np.repeat(_image(3, 32)[None], 64, axis=0)))
    a, b = views
    assert len({round(float(v.mean()), 5) for v in a}) > 60        # every image its own draw
    assert not torch.allclose(a, b)                                # the two views differ


def test_unsupported_transform_is_refused():
    with pytest.raises(BrittleError, match="backbone.augment_on=dataloader"):
        view_specs({"_target_": "lightly.transforms.MAETransform"})
