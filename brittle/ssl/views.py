"""Self-supervised views made on the device, a whole batch at once, with the augmentation
distributions of the lightly transform the config names, vectorised: torchvision's crop sampler,
then the crop and flips and the colour steps with the arithmetic torchvision has on PIL images,
so on uint8 levels, each step rounded where Pillow rounds (brittle/ssl/resample.py,
brittle/ssl/color.py): given the same draws, these pixels are lightly's. Blur is a true Gaussian
(a grouped convolution, rounded to levels), where Pillow's GaussianBlur approximates one with box
filters. A batch's views are a fixed sequence of tensor operations whatever the random draws:
nothing is read back to the host during a step, and torch.compile makes them one graph
(`backbone.compile`).

`view_specs` reads the configured lightly transform (its `_target_` and arguments, completed with
the lightly class's own defaults) into one `ViewSpec` per view; `DeviceViews` turns a uint8 batch
[B, C, H, W] into those views, float [B, C, s, s] each, with independent random parameters per
image and per view. lightly applies the same steps to one PIL image at a time in DataLoader
workers (`backbone.augment_on=dataloader`), which on small images costs far more than the network.
kornia's augmentation module, measured side by side on the same steps (README, "Backbones"), was
no faster, so these steps are written in torch without a further dependency.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import get_class
from torch import nn

from brittle.runtime.errors import BrittleError
from brittle.ssl.color import coin, color_jitter, gray
from brittle.ssl.resample import resized_crop

_TWO_VIEW = ("MoCoV2Transform", "SimCLRTransform")   # two views from one view transform
_SUPPORTED = (*_TWO_VIEW, "DINOTransform")


@dataclass(frozen=True)
class ViewSpec:
    """One view's distribution: crop size and scale range, flips, colour jitter (probability and
    strengths), grayscale, blur (probability, sigma range), solarisation, normalisation."""
    size: int
    scale: tuple[float, float]
    hf_prob: float
    vf_prob: float
    cj_prob: float
    jitter: tuple[float, float, float, float]   # brightness, contrast, saturation, hue
    gray_prob: float
    blur_prob: float
    sigmas: tuple[float, float]
    solarize_prob: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    bicubic: bool = False


def _arguments(transform: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The lightly class name and its arguments: the configured ones over the class defaults."""
    target = str(transform["_target_"])
    name = target.rsplit(".", 1)[-1]
    if name not in _SUPPORTED:
        raise BrittleError("backbone.augment_on=device supports the lightly transforms "
                           f"{list(_SUPPORTED)}, not {name}; use backbone.augment_on=dataloader")
    defaults = {k: p.default for k, p in inspect.signature(get_class(target)).parameters.items()
                if p.default is not inspect.Parameter.empty}
    args = {**defaults, **{k: v for k, v in transform.items() if k != "_target_"}}
    if float(args.get("rr_prob", 0.0)) > 0:
        raise BrittleError("backbone.augment_on=device has no random rotation (rr_prob > 0); use "
                           "backbone.augment_on=dataloader")
    return name, args


def _jitter(args: dict[str, Any], strength: float) -> tuple[float, float, float, float]:
    keys = ("cj_bright", "cj_contrast", "cj_sat", "cj_hue")
    b, c, s, h = (strength * float(args[k]) for k in keys)
    return b, c, s, h


def _pair(values: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in values)
    return lo, hi


def view_specs(transform: dict[str, Any]) -> list[ViewSpec]:
    """One ViewSpec per view of the configured lightly transform (a resolved config dict)."""
    name, a = _arguments(transform)
    norm = a.get("normalize") or {"mean": [0.0], "std": [1.0]}
    common: dict[str, Any] = dict(
        hf_prob=float(a["hf_prob"]), vf_prob=float(a["vf_prob"]), cj_prob=float(a["cj_prob"]),
        gray_prob=float(a["random_gray_scale"]), sigmas=_pair(a["sigmas"]),
        mean=tuple(map(float, norm["mean"])), std=tuple(map(float, norm["std"])))
    if name in _TWO_VIEW:
        view = ViewSpec(size=int(a["input_size"]), scale=(float(a["min_scale"]), 1.0),
                        jitter=_jitter(a, float(a["cj_strength"])),
                        blur_prob=float(a["gaussian_blur"]), solarize_prob=0.0, **common)
        return [view, view]
    blur = tuple(map(float, a["gaussian_blur"]))
    # lightly's second global view keeps DINOViewTransform's own jitter strength
    dino_view = get_class("lightly.transforms.dino_transform.DINOViewTransform")
    view_strength = inspect.signature(dino_view).parameters["cj_strength"].default
    first = ViewSpec(size=int(a["global_crop_size"]), scale=_pair(a["global_crop_scale"]),
                     jitter=_jitter(a, float(a["cj_strength"])), blur_prob=blur[0],
                     solarize_prob=0.0, bicubic=True, **common)
    second = replace(first, jitter=_jitter(a, float(view_strength)), blur_prob=blur[1],
                     solarize_prob=float(a["solarization_prob"]))
    local = replace(first, size=int(a["local_crop_size"]), scale=_pair(a["local_crop_scale"]),
                    blur_prob=blur[2])
    return [first, second] + [local] * int(a["n_local_views"])


class DeviceViews(nn.Module):
    """uint8 images [B, C, H, W] (any device) -> list of float views [B, C, s, s], one per spec.
    Random draws come from torch's global generator (seeded per run by Lightning)."""

    def __init__(self, specs: list[ViewSpec], channels: int):
        super().__init__()
        self.specs, self.channels = specs, int(channels)
        # normalisation constants live on the device with the module (not in checkpoints): made
        # from Python lists at every step, they would be a blocking host-to-device copy each time
        for i, s in enumerate(specs):
            for name, values in (("mean", s.mean), ("std", s.std)):
                const = torch.tensor(values[:self.channels], dtype=torch.float32).view(1, -1, 1, 1)
                self.register_buffer(f"{name}_{i}", const, persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [(self.view(images, s) - self.get_buffer(f"mean_{i}")) / self.get_buffer(f"std_{i}")
                for i, s in enumerate(self.specs)]

    def view(self, images: torch.Tensor, s: ViewSpec) -> torch.Tensor:
        """One view float [B, C, s, s] in [0, 1] of every image of uint8 images [B, C, H, W], in
        lightly's order: crop and flips, colour jitter, grayscale, blur, solarisation, all on
        uint8 levels; ToTensor's division by 255 last (`forward` then normalises)."""
        out = crop_and_flip(images, s.size, s.scale, s.hf_prob, s.vf_prob, s.bicubic)
        if s.cj_prob > 0 and any(v > 0 for v in s.jitter):
            out = color_jitter(out, s.jitter, s.cj_prob)
        if s.gray_prob > 0 and out.shape[1] == 3:
            out = torch.where(coin(out, s.gray_prob), gray(out).expand_as(out), out)
        if s.blur_prob > 0:
            out = gaussian_blur(out, s.sigmas, s.blur_prob).round_()
        if s.solarize_prob > 0:   # ImageOps.solarize(threshold=128)
            out = torch.where(coin(out, s.solarize_prob) & (out >= 128), 255.0 - out, out)
        return out / 255.0


def crop_boxes(b: int, h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
               device: torch.device, attempts: int = 10) -> torch.Tensor:
    """torchvision's RandomResizedCrop.get_params for b images at once: float [b, 4] boxes
    (top, left, height, width); up to `attempts` draws each, then the central fallback crop."""
    area = h * w * torch.empty(b, attempts, device=device).uniform_(*scale)
    log_r = torch.empty(b, attempts, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_r)
    cw = torch.sqrt(area * aspect).round()
    ch = torch.sqrt(area / aspect).round()
    ok = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((b,), -1, device=device))
    # fallback (no draw fits): the largest central crop within the ratio range
    in_ratio = w / h
    fw = float(w if ratio[0] <= in_ratio <= ratio[1] else (w if in_ratio < ratio[0]
                                                           else round(h * ratio[1])))
    fh = float(h if ratio[0] <= in_ratio <= ratio[1] else (round(w / ratio[0])
                                                           if in_ratio < ratio[0] else h))
    pick = first.clamp_min(0).unsqueeze(1)
    cw = torch.where(first >= 0, cw.gather(1, pick).squeeze(1), torch.full((b,), fw, device=device))
    ch = torch.where(first >= 0, ch.gather(1, pick).squeeze(1), torch.full((b,), fh, device=device))
    top = torch.floor(torch.rand(b, device=device) * (h - ch + 1))
    left = torch.floor(torch.rand(b, device=device) * (w - cw + 1))
    top = torch.where(first >= 0, top, torch.div(h - ch, 2, rounding_mode="floor"))
    left = torch.where(first >= 0, left, torch.div(w - cw, 2, rounding_mode="floor"))
    return torch.stack([top, left, ch, cw], dim=1)


def crop_and_flip(images: torch.Tensor, size: int, scale: tuple[float, float], hf_prob: float,
                  vf_prob: float, bicubic: bool = False) -> torch.Tensor:
    """Random resized crops of uint8 images [B, C, H, W] to float levels [B, C, size, size],
    flipped with the given probabilities (torchvision's draws, PIL's pixels)."""
    b, _, h, w = images.shape
    boxes = crop_boxes(b, h, w, scale, (3 / 4, 4 / 3), images.device)
    hflip = torch.rand(b, device=images.device) < hf_prob
    vflip = torch.rand(b, device=images.device) < vf_prob
    return resized_crop(images, boxes, size, bicubic, hflip, vflip)


def gaussian_blur(x: torch.Tensor, sigmas: tuple[float, float], p: float) -> torch.Tensor:
    """Gaussian blur with probability p and sigma ~ U(sigmas) per image (PIL's radius = sigma),
    as one grouped separable convolution over the batch."""
    b, c, h, w = x.shape
    radius = max(1, min(int(math.ceil(3 * sigmas[1])), (min(h, w) - 1) // 2))
    sigma = torch.empty(b, device=x.device).uniform_(*sigmas)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t[None] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)        # [B*C, k]
    y = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    y = F.conv2d(y, kernel[:, None, :, None], groups=b * c)
    y = F.conv2d(y, kernel[:, None, None, :], groups=b * c).view(b, c, h, w)
    return torch.where(coin(x, p), y, x)
