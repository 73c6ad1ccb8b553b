"""Augmentation batched on the device, per image of a batch: flip, translation, cutout, and
progressive resizing. Every draw comes from the model's own generator (brittle/retrain/loop.py),
so a model's augmentation follows its seed."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from brittle.retrain.recipe import Recipe
from brittle.runtime.errors import BrittleError


def resized(x: torch.Tensor, recipe: Recipe, epoch: int) -> torch.Tensor:
    """x [B, C, H, W] at the training resolution of `epoch` (bilinear, antialiased), or as is."""
    if recipe.resolution is None:
        return x
    size = [s for e, s in recipe.resolution if e <= epoch][-1]
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def augment(x: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip, translation by up to `translate` px (padded with `translate_fill`,
    0 by default) and a `cutout` x `cutout` zeroed square (centred anywhere, clipped at the border,
    or with `cutout_inside` placed fully inside), independently per image of x [B, C, H, W]."""
    b, _, h, w = x.shape
    dev = x.device
    if recipe.flip:
        flip = torch.rand(b, generator=gen, device=dev) < 0.5
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    if recipe.translate > 0:
        x = translate(x, recipe.translate, gen, fill=recipe.translate_fill)
    if recipe.cutout > 0:
        s = recipe.cutout
        if recipe.cutout_inside:
            y0 = torch.randint(0, h - s + 1, (b,), generator=gen, device=dev).view(b, 1, 1)
            x0 = torch.randint(0, w - s + 1, (b,), generator=gen, device=dev).view(b, 1, 1)
        else:
            y0 = torch.randint(0, h, (b,), generator=gen, device=dev).view(b, 1, 1) - s // 2
            x0 = torch.randint(0, w, (b,), generator=gen, device=dev).view(b, 1, 1) - s // 2
        yy = _arange(h, dev).view(1, h, 1)
        xx = _arange(w, dev).view(1, 1, w)
        hole = (yy >= y0) & (yy < y0 + s) & (xx >= x0) & (xx < x0 + s)
        x = x.masked_fill(hole.unsqueeze(1), 0.0)
    return x


def translate(x: torch.Tensor, pad: int, gen: torch.Generator, mode: str = "constant",
              fill: tuple[float, ...] | None = None) -> torch.Tensor:
    """Each image of x [B, C, H, W] shifted by up to `pad` px in each direction; the uncovered
    border is zero, `fill` [C] per channel (mode "constant"), or mirrored ("reflect")."""
    b, c, h, w = x.shape
    if fill is not None and mode == "constant":
        if len(fill) != c:
            raise BrittleError(f"trainer.recipe.translate_fill has {len(fill)} values for "
                               f"{c}-channel images; give one per channel")
        level = _constant(tuple(fill), x.dtype, x.device).view(1, c, 1, 1)
        padded = F.pad(x - level, (pad,) * 4) + level   # pad with 0 around x - fill: fill around x
    else:
        padded = F.pad(x, (pad,) * 4, mode=mode)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + _arange(h, x.device)).view(b, 1, h, 1)
    cols = (dx[:, None] + _arange(w, x.device)).view(b, 1, 1, w)
    return padded.gather(2, rows.expand(b, c, h, w + 2 * pad)).gather(3, cols.expand(b, c, h, w))


# Made once per size and device, not per step: a CUDA tensor made from host values is a copy
# that waits for the device (a host synchronisation every step), and each arange is a launch.
# Never evicted, so a cached tensor is never freed while another stream still reads it.
@functools.cache
def _arange(n: int, device: torch.device) -> torch.Tensor:
    """int64 [n]: 0 .. n - 1 on `device` (read-only: shared by every call)."""
    return torch.arange(n, device=device)


@functools.cache
def _constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`values` as a [len(values)] tensor on `device` (read-only: shared by every call)."""
    return torch.tensor(values, dtype=dtype, device=device)
