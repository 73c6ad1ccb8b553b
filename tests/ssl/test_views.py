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
    pil = (Image.fromarray(image[0]) if image.shape[0] == 1
           else Image.fromarray(image.transpose(1, 2, 0)))
    torch.manual_seed(0)
    return [t(pil)[view].numpy() for _ in range(N)]


def _device_views(transform: dict, image: np.ndarray, view: int) -> list[np.ndarray]:
    views = DeviceViews(view_specs(transform), image.shape[0])
    torch.manual_seed(1)
    batch = torch.from_numpy(np.repeat(image[None], N, axis=0))
    return list(views(batch)[view].numpy())


CASES = {
    "cifar_moco": {"_target_": "lightly.transforms.MoCoV2Transform", "input_size": 32,
                   "cj_strength": 0.5, "gaussian_blur": 0.5, "hf_prob": 0.5, "normalize": None},
    "digits_moco": {"_target_": "lightly.transforms.MoCoV2Transform", "input_size": 8,
                    "min_scale": 0.5, "cj_prob": 0.8, "cj_strength": 0.5, "random_gray_scale": 0.0,
                    "gaussian_blur": 0.0, "hf_prob": 0.0, "normalize": None},
    "cifar_simclr": {"_target_": "lightly.transforms.SimCLRTransform", "input_size": 32,
                     "normalize": None},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_view_statistics_match_lightly(case):
    transform = CASES[case]
    channels = 1 if case.startswith("digits") else 3
    image = _image(channels, int(transform["input_size"]))
    ours, theirs = _stats(_device_views(transform, image, 0)), _stats(_lightly_views(transform,
                                                                                     image, 0))
    for name in ours:
        if channels == 1 and name == "channel_spread":
            continue
        stat = ks_2samp(ours[name], theirs[name])
        # two samples of 1500 from one distribution: D above 0.08 happens with p < 0.001 (the
        # device views round to uint8 where PIL does, so an 8x8 image needs no wider bound)
        assert stat.statistic < 0.08, (case, name, stat)


def test_crop_parameters_follow_torchvision():
    from torchvision.transforms import RandomResizedCrop
    torch.manual_seed(0)
    img = torch.zeros(3, 24, 32)
    ref = np.array([RandomResizedCrop.get_params(img, (0.2, 1.0), (3 / 4, 4 / 3))
                    for _ in range(4000)], float)
    ours = crop_boxes(4000, 24, 32, (0.2, 1.0), (3 / 4, 4 / 3), torch.device("cpu")).numpy()
    for a, b in ((ref, ours),):
        for fn in (lambda z: z[:, 2] * z[:, 3] / (24 * 32), lambda z: z[:, 3] / z[:, 2],
                   lambda z: z[:, 0], lambda z: z[:, 1]):
            assert ks_2samp(fn(a), fn(b)).statistic < 0.05
    assert (ours[:, 0] + ours[:, 2] <= 24).all() and (ours[:, 1] + ours[:, 3] <= 32).all()


def test_dino_views_match_lightlys_shapes_and_count():
    from hydra.utils import instantiate
    dino = {"_target_": "lightly.transforms.DINOTransform", "global_crop_size": 32,
            "local_crop_size": 16, "n_local_views": 3, "normalize": None}
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


def _sampled_by_lightly(view) -> dict:
    """The parameters one lightly view transform (a torchvision Compose) samples from."""
    from lightly.transforms.gaussian_blur import GaussianBlur
    from lightly.transforms.rotation import RandomRotate
    from lightly.transforms.solarize import RandomSolarization
    from torchvision.transforms import v2 as T2
    out: dict = {"blur": 0.0, "solarize": 0.0, "jitter": (0.0,) * 4, "cj_prob": 0.0}
    for step in view.transform.transforms:
        name = type(step).__name__
        if name == "RandomResizedCrop":
            out.update(size=tuple(step.size), scale=tuple(step.scale), ratio=tuple(step.ratio),
                       bicubic="BICUBIC" in str(step.interpolation).upper())
        elif name in ("RandomHorizontalFlip", "RandomVerticalFlip", "RandomGrayscale"):
            out[name] = float(step.p)
        elif name == "RandomApply":
            (jitter,) = step.transforms
            ranges = (jitter.brightness, jitter.contrast, jitter.saturation)
            half = [(r[1] - 1.0) if r is not None else 0.0 for r in ranges]
            out.update(cj_prob=float(step.p), jitter=(*half, jitter.hue[1] if jitter.hue else 0.0))
        elif isinstance(step, GaussianBlur):
            out.update(blur=float(step.prob), sigmas=tuple(map(float, step.sigmas)))
        elif isinstance(step, RandomSolarization):
            out["solarize"] = float(step.prob)
        elif isinstance(step, RandomRotate):
            assert step.prob == 0, "the device views have no rotation"
        elif isinstance(step, T2.Normalize) or name == "Normalize":
            out.update(mean=tuple(step.mean), std=tuple(step.std))
    return out


def _sampled_on_device(spec) -> dict:
    return {"size": (spec.size, spec.size), "scale": spec.scale, "ratio": (3 / 4, 4 / 3),
            "bicubic": spec.bicubic,
            "RandomHorizontalFlip": spec.hf_prob, "RandomVerticalFlip": spec.vf_prob,
            "RandomGrayscale": spec.gray_prob, "cj_prob": spec.cj_prob, "jitter": spec.jitter,
            "blur": spec.blur_prob, "sigmas": spec.sigmas, "solarize": spec.solarize_prob,
            "mean": spec.mean, "std": spec.std}


CONFIGURED = {   # each configured view transform, by the overrides that compose it
    "digits": ([], "dataset.ssl_transform"),
    "cifar10": (["dataset=cifar10"], "dataset.ssl_transform"),
    "imagefolder": (["dataset=imagefolder"], "dataset.ssl_transform"),
    "paper_cifar10": (["experiment=paper_cifar10"], "dataset.ssl_transform"),
    "paper_transfer": (["experiment=paper_transfer"], "dataset.ssl_transform"),
    "dino": (["dataset=cifar10", "backbone=dino_r18"], "backbone.transform"),
}


@pytest.mark.parametrize("case", sorted(CONFIGURED))
def test_device_views_sample_what_the_dataloader_path_samples(case):
    """backbone.augment_on=device and =dataloader, view by view: the same crop size, scale and
    ratio, flips, jitter probability and strengths, grey, blur, solarisation, normalisation."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from tests.helpers import make_cfg
    overrides, path = CONFIGURED[case]
    node = OmegaConf.select(make_cfg(overrides), path)
    lightly_views = instantiate(node).transforms
    specs = view_specs(OmegaConf.to_container(node, resolve=True))
    assert len(specs) == len(lightly_views)
    for spec, view in zip(specs, lightly_views):
        theirs, ours = _sampled_by_lightly(view), _sampled_on_device(spec)
        if theirs["blur"] == 0:
            theirs.pop("sigmas"), ours.pop("sigmas")
        assert set(theirs) == set(ours), case
        for key in ours:
            np.testing.assert_allclose(np.asarray(ours[key], float), np.asarray(theirs[key], float),
                                       rtol=1e-6, err_msg=f"{case}: {key}")


IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.parametrize("preset", ["paper_cifar10", "paper_transfer", "paper_imagenet"])
def test_paper_presets_pretrain_on_the_reference_codes_views(preset):
    """The reference code's train_ssl.py: SimCLRCollateFunction(input_size=32, gaussian_blur=0.),
    whose defaults (lightly 1.2 to 1.5) are crop scale (0.08, 1), jitter 0.5 x (0.8, 0.8, 0.8,
    0.2) with p 0.8, grey 0.2, horizontal flip 0.5, ImageNet normalisation; fp32 (its Trainer's
    default precision). Read from the instantiated transform, not from the config's numbers.
    paper_imagenet pretrains nothing (the released MoCo v2 weights)."""
    from hydra.utils import instantiate

    from tests.helpers import make_cfg
    cfg = make_cfg([f"experiment={preset}"])
    if preset == "paper_imagenet":
        assert cfg.backbone.method is None and cfg.backbone.name == "pretrained"
        return
    (view, second) = instantiate(cfg.dataset.ssl_transform).transforms
    sampled = _sampled_by_lightly(view)
    assert sampled == _sampled_by_lightly(second)
    assert sampled["scale"] == (0.08, 1.0) and sampled["size"] == (32, 32)
    assert not sampled["bicubic"]
    np.testing.assert_allclose(sampled["jitter"], [0.4, 0.4, 0.4, 0.1])
    assert (sampled["cj_prob"], sampled["RandomGrayscale"]) == (0.8, 0.2)
    assert sampled["RandomHorizontalFlip"] == 0.5
    assert (sampled["RandomVerticalFlip"], sampled["blur"], sampled["solarize"]) == (0.0, 0.0, 0.0)
    assert list(sampled["mean"]) == IMAGENET["mean"] and list(sampled["std"]) == IMAGENET["std"]
    assert cfg.backbone.precision == "fp32"
    # the kNN monitor and the embedding see the images as the views normalised them
    assert dict(cfg.backbone.normalize) == IMAGENET
