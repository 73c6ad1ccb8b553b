"""Colour steps of the device views (brittle/ssl/views.py), batched with per-image parameters:
torchvision's ColorJitter (brightness, contrast, saturation, hue in a random order per image) and
RandomGrayscale, as they compute on PIL images in lightly's DataLoader path: on uint8 levels
(0..255, held in float32), with Pillow's arithmetic (libImaging Blend.c and Convert.c): each step
truncates to uint8, the contrast mean is rounded to a level, grey is the fixed-point ITU-R 601
luma, hue goes through Pillow's uint8 HSV. The float operations are the ones Pillow's C code
makes, in float32 where it uses float and float64 where it uses double, so the levels are
Pillow's.

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
    """Pillow's "L" conversion [B, 1, H, W] of RGB levels x [B, 3, H, W]: ITU-R 601 luma in 16-bit
    fixed point, rounded (every partial sum is an integer below 2**24, exact in float32)."""
    if x.shape[1] != 3:
        return x
    r, g, b = x.unbind(1)
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536).unsqueeze(1)


def color_jitter(x: torch.Tensor, strengths: tuple[float, float, float, float],
                 p: float) -> torch.Tensor:
    """torchvision's ColorJitter applied with probability p per image of levels x [B, C, H, W]:
    brightness, contrast, saturation and hue factors drawn per image (in that order, then the
    order of the steps, then the coin) and applied in a random order per image."""
    b = x.shape[0]
    factors = torch.stack([torch.empty(b, device=x.device).uniform_(max(0.0, 1 - v), 1 + v)
                           for v in strengths[:3]], 1)
    shift = torch.empty(b, device=x.device).uniform_(-strengths[3], strengths[3])
    order = torch.argsort(torch.rand(b, 4, device=x.device), dim=1)
    return jitter(x, strengths, factors, shift, order, coin(x, p).view(-1))


def jitter(x: torch.Tensor, strengths: tuple[float, float, float, float], factors: torch.Tensor,
           shift: torch.Tensor, order: torch.Tensor, jittered: torch.Tensor) -> torch.Tensor:
    """ColorJitter with given draws: levels x [B, C, H, W]; factors [B, 3] (brightness, contrast,
    saturation), hue shift [B] (in turns), order long [B, 4] (step k at position i: order[:, i]
    == k), jittered bool [B]. A step of strength 0 is skipped, as torchvision skips it; a
    one-channel image takes no saturation or hue step (Pillow leaves such an image as it is)."""
    bright, contrast, sat, hue = strengths
    if x.shape[1] == 1:
        sat = hue = 0.0
    out = x
    for slot in range(4):   # at each position of the order, each image takes one step
        takes = [jittered & (order[:, slot] == k) for k in range(4)]
        if bright > 0:
            out = _blend(out, torch.zeros_like(out[:, :1]), _or_one(takes[0], factors[:, 0]))
        if contrast > 0:
            out = _blend(out, _mean_level(gray(out)), _or_one(takes[1], factors[:, 1]))
        if sat > 0:
            out = _blend(out, gray(out), _or_one(takes[2], factors[:, 2]))
        if hue > 0:
            out = torch.where(takes[3].view(-1, 1, 1, 1), shift_hue(out, shift), out)
    return out


def _or_one(takes: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """[B, 1, 1, 1]: the image's factor where it takes the step, else 1 (a blend with weight 1
    returns the image exactly)."""
    return torch.where(takes, factor, torch.ones_like(factor)).view(-1, 1, 1, 1)


def _mean_level(luma: torch.Tensor) -> torch.Tensor:
    """ImageEnhance.Contrast's grey level [B, 1, 1, 1]: the mean luma rounded half up (an exact
    float64 sum of integers)."""
    mean = luma.sum((1, 2, 3), keepdim=True, dtype=torch.float64) / luma[0].numel()
    return torch.floor(mean + 0.5).float()


def _blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Pillow's Image.blend(degenerate, x, factor) on levels: degenerate + factor * (x -
    degenerate) in float32, clipped to 0..255 and truncated to a level."""
    return (degenerate + factor * (x - degenerate)).clamp_(0, 255).floor_()


def _to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pillow's RGB -> HSV of levels [B, 3, H, W]: three [B, H, W] levels. A grey pixel (no
    chroma) gets hue and saturation 0 from the formulas themselves."""
    r, g, b = x.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    cr = maxc - torch.minimum(torch.minimum(r, g), b)
    s = cr / maxc.clamp_min(1.0)
    chroma = cr.clamp_min(1.0)
    rc, gc, bc = ((maxc - c) / chroma for c in (r, g, b))
    rc, gc, bc = rc.double(), gc.double(), bc.double()
    # Pillow's red branch is a float subtraction, the others double sums: bc - gc of two floats
    # is exact in double, so one rounding to float makes all three
    h = torch.where(r == maxc, bc - gc, torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.fmod(h.float().double() / 6.0 + 1.0, 1.0).float()
    uh = torch.trunc(h.double() * 255.0).clamp_(0, 255).float()
    us = torch.trunc(s.double() * 255.0).clamp_(0, 255).float()
    return uh, us, maxc


def _to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Pillow's HSV -> RGB of levels [B, H, W] each: [B, 3, H, W] levels. Saturation 0 gives
    p = q = t = v, Pillow's grey pixel."""
    sixth = h.double() * 6.0 / 255.0
    i = torch.floor(sixth)
    f = (sixth - i).float()
    fs = (s.double() / 255.0).float()
    vd = v.double()
    # Pillow's round(v * (1 - fs)): the exact v * (255 - s) / 255 is k/255 off a whole level, never
    # within 1/510 of a half, so float32 rounds it alike
    p = torch.floor(v * (255.0 - s) / 255.0 + 0.5).unsqueeze(1)
    # q and t in float64 as Pillow computes them (exact: at most 8 + 48 bits); their values sit on
    # a grid far finer than a half-level but far coarser than a float64 ulp, so floor(y + 0.5)
    # is C's round()
    q = torch.floor(vd * (1.0 - (fs * f).double()) + 0.5).float().unsqueeze(1)
    t = torch.floor(vd * (1.0 - fs.double() * (1.0 - f.double())) + 0.5).float().unsqueeze(1)
    # sector i (6 is 0) gives red (v, q, p, p, t, v); green and blue take red's choice two and
    # four sectors back
    j = i.float().unsqueeze(1) - 2.0 * torch.arange(3, device=h.device).view(1, 3, 1, 1)
    j = torch.where(j < 0, j + 6.0, torch.where(j >= 6, j - 6.0, j))
    vv = v.unsqueeze(1)
    return torch.where(j == 1, q, torch.where(j == 4, t, torch.where((j == 2) | (j == 3), p, vv)))


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_hue of PIL images: levels [B, 3, H, W] to Pillow's HSV, the hue level
    plus int(shift * 255) modulo 256 (shift [B] in turns), back to RGB."""
    h, s, v = _to_hsv(x)
    step = torch.trunc(shift.double() * 255.0).float().view(-1, 1, 1)
    return _to_rgb(torch.remainder(h + step, 256.0), s, v)
