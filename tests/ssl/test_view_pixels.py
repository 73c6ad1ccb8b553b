"""Device views pixel by pixel against torchvision on PIL images, what lightly's transforms do in
DataLoader workers (`backbone.augment_on=dataloader`): the same crop boxes, flips, jitter factors
and orders, on real images (scikit-learn's digits, upscaled, and CIFAR-10 images when the archive
is present). Differences are counted in uint8 levels (1 level = 1/255 of the view's range)."""
from __future__ import annotations

import tarfile

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from sklearn.datasets import load_digits
from torchvision.transforms import InterpolationMode

from brittle.ssl.color import gray, jitter
from brittle.ssl.resample import resized_crop

# (top, left, height, width) in a 32x32 image: whole, small (upscaled), at each border, thin
BOXES = [(0, 0, 32, 32), (3, 5, 10, 13), (0, 9, 23, 17), (14, 0, 18, 24), (5, 11, 27, 21),
         (9, 2, 7, 30), (1, 1, 31, 31)]
# (brightness, contrast, saturation, hue) factors and the order the steps take (0..3 in that
# order); the last image of each cycle is not jittered
FACTORS = [(1.3, 0.7, 1.35, 0.08), (0.65, 1.4, 0.6, -0.1), (1.0, 1.21, 0.8, 0.031),
           (0.87, 0.75, 1.2, -0.047), (1.12, 0.62, 1.4, 0.0)]
ORDERS = [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1), (0, 2, 1, 3)]
STRENGTHS = (0.4, 0.4, 0.4, 0.1)
# (output size, bicubic): SimCLR/MoCo's bilinear 32 and 16 (down- and upscaling), DINO's bicubic
RESIZES = [(32, False), (16, False), (32, True), (12, True)]


def _digits(n: int) -> np.ndarray:
    """uint8 [n, 1, 32, 32]: scikit-learn's 8x8 digits at 0..255, each pixel made 4x4."""
    d = np.rint(load_digits().images[:n] * (255 / 16)).astype(np.uint8)
    return np.kron(d, np.ones((4, 4), np.uint8))[:, None]


def _digits_rgb(n: int) -> np.ndarray:
    """uint8 [n, 3, 32, 32]: three different digits as the three channels (colour everywhere)."""
    d = _digits(3 * n)[:, 0]
    return np.stack([d[:n], 255 - d[n:2 * n], d[2 * n:] // 2 + 64], axis=1)


def _cifar(archive, per_class: int = 2) -> np.ndarray:
    """uint8 [10 * per_class, 3, 32, 32]: the first test images of each class in the archive."""
    seen: dict[str, list[np.ndarray]] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 3 and parts[0] == "test" and member.name.endswith(".jpg"):
                got = seen.setdefault(parts[1], [])
                if len(got) < per_class:
                    with Image.open(tar.extractfile(member)) as im:
                        got.append(np.asarray(im.convert("RGB")).transpose(2, 0, 1))
    return np.stack([im for cls in sorted(seen) for im in seen[cls]])


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))


def _array(pil: Image.Image) -> np.ndarray:
    a = np.asarray(pil, dtype=np.float32)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _plan(images: np.ndarray) -> dict:
    """Every image with every box; flips, jitter factors and orders cycling over the batch."""
    n = len(images) * len(BOXES)
    idx = np.arange(n)
    factors = np.array([FACTORS[i % len(FACTORS)] for i in idx], np.float32)
    return {"images": np.repeat(images, len(BOXES), axis=0),
            "boxes": np.array([BOXES[i % len(BOXES)] for i in idx], np.float32),
            "hflip": idx % 2 == 1, "vflip": idx % 3 == 2,
            "factors": factors[:, :3], "shift": factors[:, 3],
            "order": np.array([ORDERS[i % len(ORDERS)] for i in idx]),
            "jittered": idx % len(FACTORS) != len(FACTORS) - 1}


def _device(plan: dict, size: int, bicubic: bool, jittered: bool) -> np.ndarray:
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in plan.items()}
    out = resized_crop(t["images"], t["boxes"], size, bicubic, t["hflip"], t["vflip"])
    if jittered:
        out = jitter(out, STRENGTHS, t["factors"], t["shift"], t["order"], t["jittered"])
    return out.numpy()


def _torchvision(plan: dict, size: int, bicubic: bool, jittered: bool) -> np.ndarray:
    """torchvision's functional ops on one PIL image at a time, in each image's order."""
    mode = InterpolationMode.BICUBIC if bicubic else InterpolationMode.BILINEAR
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    out = []
    for i, image in enumerate(plan["images"]):
        top, left, h, w = (int(v) for v in plan["boxes"][i])
        pil = TF.resized_crop(_pil(image), top, left, h, w, [size, size], interpolation=mode)
        pil = TF.hflip(pil) if plan["hflip"][i] else pil
        pil = TF.vflip(pil) if plan["vflip"][i] else pil
        values = [*map(float, plan["factors"][i]), float(plan["shift"][i])]
        if jittered and plan["jittered"][i]:
            for k in plan["order"][i]:
                pil = ops[k](pil, values[k])
        out.append(_array(pil))
    return np.stack(out)


def _differences(plan: dict, size: int, bicubic: bool, jittered: bool) -> dict[str, float]:
    """Largest |device - torchvision| in levels inside (1 pixel in from the border) and on the
    border, and the fraction of values equal."""
    diff = np.abs(_device(plan, size, bicubic, jittered) - _torchvision(plan, size, bicubic,
                                                                        jittered))
    edge = diff.copy()
    edge[..., 1:-1, 1:-1] = 0
    return {"inside": float(diff[..., 1:-1, 1:-1].max()), "edge": float(edge.max()),
            "equal": float((diff == 0).mean())}


def _check(images: np.ndarray) -> None:
    """Within one level everywhere, the border included (the crop reads only its own pixels),
    and equal but for at most 1 value in 1000. The arithmetic is Pillow's, so the values are
    equal; the margin is for a Pillow build whose C compiler fuses its float multiply-adds."""
    plan = _plan(images)
    for size, bicubic in RESIZES:
        for jittered in (False, True):
            d = _differences(plan, size, bicubic, jittered)
            assert d["inside"] <= 1 and d["edge"] <= 1 and d["equal"] >= 0.999, \
                (size, bicubic, jittered, d)


def test_digits_views_match_torchvision_on_pil_to_a_level():
    _check(_digits(6))


def test_colour_digits_views_match_torchvision_on_pil_to_a_level():
    _check(_digits_rgb(6))


def test_cifar10_views_match_torchvision_on_pil_to_a_level(cifar_tgz):
    _check(_cifar(cifar_tgz))


def test_grey_is_pils_luma():
    """RandomGrayscale's PIL conversion ("L"), level for level."""
    images = _digits_rgb(8)
    ours = gray(torch.from_numpy(images).float()).numpy()
    theirs = np.stack([_array(_pil(im).convert("L")) for im in images])
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("size", [32, 7, 2])
def test_resize_is_exact_on_random_pixels(size):
    """Random uint8 pixels, random boxes in a 29x41 image, flips: every pixel equal to PIL's
    resize (up- and downscaling, the height or the width first; sums in float64 at size 2)."""
    gen = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (40, 3, 29, 41), generator=gen, dtype=torch.uint8)
    h = torch.randint(1, 30, (40,), generator=gen)
    w = torch.randint(1, 42, (40,), generator=gen)
    top = (torch.rand(40, generator=gen) * (30 - h)).long()
    left = (torch.rand(40, generator=gen) * (42 - w)).long()
    boxes = torch.stack([top, left, h, w], 1).float()
    hflip, vflip = torch.arange(40) % 2 == 0, torch.arange(40) % 3 == 0
    for bicubic in (False, True):
        ours = resized_crop(images, boxes, size, bicubic, hflip, vflip).numpy()
        mode = InterpolationMode.BICUBIC if bicubic else InterpolationMode.BILINEAR
        theirs = []
        for i, (im, box) in enumerate(zip(images, boxes.long())):
            pil = TF.resized_crop(_pil(im.numpy()), *map(int, box), [size, size],
                                  interpolation=mode)
            pil = TF.hflip(pil) if hflip[i] else pil
            theirs.append(_array(TF.vflip(pil) if vflip[i] else pil))
        np.testing.assert_array_equal(ours, np.stack(theirs))
