"""Colour steps of the device views (brittle/ssl/views.py), batched with per-image parameters:
torchvision's ColorJitter (brightness, contrast, saturation, hue in a random order per image) and
its ITU-R 601 grayscale.

Every step runs on the whole batch with identity parameters for the images that do not take it
at that point (factor 1, or the image itself where hue is not shifted), so a batch takes the same
fixed sequence of tensor operations whatever its random draws: no per-step index lists, no
device-to-host reads, one graph for torch.compile. The result equals applying each step to only
the images that take it, draw for draw.
"""
from __future__ import annotations

import torch


def coin(x: torch.Tensor, p: float) -> torch.Tensor:
    """bool [B, 1, 1, 1]: True with probability p, per image of x [B, ...]."""
    return (torch.rand(x.shape[0], device=x.device) < p).view(-1, 1, 1, 1)


def gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma [B, 1, H, W] of RGB x [B, 3, H, W] (torchvision's rgb_to_grayscale)."""
    if x.shape[1] != 3:
        return x
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def color_jitter(x: torch.Tensor, strengths: tuple[float, float, float, float],
                 p: float) -> torch.Tensor:
    """torchvision's ColorJitter applied with probability p per image of x [B, C, H, W] in
    [0, 1]: brightness, contrast, saturation and hue factors drawn per image and applied in a
    random order per image. A one-channel image gets brightness and contrast only, as
    torchvision leaves it."""
    b = x.shape[0]
    bright, contrast, sat, hue = strengths
    if x.shape[1] == 1:
        sat = hue = 0.0
    factor = [torch.empty(b, device=x.device).uniform_(max(0.0, 1 - v), 1 + v)
              for v in (bright, contrast, sat)]
    shift = torch.empty(b, device=x.device).uniform_(-hue, hue)
    order = torch.argsort(torch.rand(b, 4, device=x.device), dim=1)
    jittered = coin(x, p).view(-1)
    out = x
    for slot in range(4):   # at each position of the order, each image takes one step
        takes = [jittered & (order[:, slot] == k) for k in range(4)]
        if bright > 0:
            out = (out * _or_one(takes[0], factor[0])).clamp(0, 1)
        if contrast > 0:
            out = blend(out, gray(out).mean((1, 2, 3), keepdim=True), _or_one(takes[1], factor[1]))
        if sat > 0:
            out = blend(out, gray(out), _or_one(takes[2], factor[2]))
        if hue > 0:
            out = torch.where(takes[3].view(-1, 1, 1, 1), shift_hue(out, shift), out)
    return out


def _or_one(takes: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """[B, 1, 1, 1]: the image's factor where it takes the step, else 1 (x * 1 and a blend with
    weight 1 return x exactly)."""
    return torch.where(takes, factor, torch.ones_like(factor)).view(-1, 1, 1, 1)


def blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * x + (1 - factor) * other, clamped to [0, 1]; factor [B] or [B, 1, 1, 1]."""
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * other).clamp(0, 1)


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """RGB x [B, 3, H, W] -> HSV, hue + shift [B] (in turns), -> RGB (torchvision's adjust_hue)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    v, delta = maxc, maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, (g - b) / d,
                    torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    h = (h + shift.view(-1, 1, 1)) % 1.0
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    pv, qv, tv = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    sectors = ((v, tv, pv), (qv, v, pv), (pv, v, tv), (pv, qv, v), (tv, pv, v), (v, pv, qv))
    rgb = [torch.stack(c, 1) for c in sectors]
    out = rgb[0]
    for k in range(1, 6):
        out = torch.where((i == k).unsqueeze(1), rgb[k], out)
    return out
