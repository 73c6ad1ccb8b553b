"""The device views' random resized crop (brittle/ssl/views.py) as torchvision computes it on a PIL
image, batched: the crop box cut out, then PIL's resize of the cut-out image (Pillow's
libImaging/Resample.c): a separable filter (bilinear or bicubic, widened by the scale when
shrinking, so antialiased), weights normalised over the taps that fall inside the box and rounded
to 22-bit integers, one pass per axis in integer arithmetic, each rounded to uint8. No pixel
outside the box contributes, and the arithmetic is Pillow's, so the pixels are Pillow's.

Each image has its own box, so its own weights: an index and an integer weight per output pixel
and tap, [B, size, taps], computed on the device in float64 as Pillow computes them in double,
then laid out as dense matrices so each pass is one batched matrix product whose sums are exact
(`_matrix`). The number of taps is fixed by the image and output sizes, so a batch takes the same
operations whatever its boxes (one graph for torch.compile).
"""
from __future__ import annotations

import math

import torch
from PIL import __version__ as _PILLOW

_BITS = 22   # PIL's PRECISION_BITS for 8-bit images: 32 - 8 - 2
_LOW = float(1 << 11)   # weights split in two 11-bit halves (_matrix)
# Pillow 13 makes the vertical pass first when the height shrinks by more than twice what the
# width does; earlier versions always start with the horizontal one
_VERTICAL_FIRST = int(_PILLOW.split(".")[0]) >= 13


def _filter(t: torch.Tensor, bicubic: bool) -> torch.Tensor:
    """PIL's bilinear (triangle) or bicubic (a = -0.5) kernel at offsets t (float64)."""
    t = t.abs()
    if not bicubic:
        return torch.where(t < 1.0, 1.0 - t, torch.zeros_like(t))
    near = (1.5 * t - 2.5) * t * t + 1
    far = (((t - 5) * t + 8) * t - 4) * -0.5
    return torch.where(t < 1.0, near, torch.where(t < 2.0, far, torch.zeros_like(t)))


def taps(length: int, size: int, bicubic: bool) -> int:
    """The most taps PIL's filter takes shrinking up to `length` pixels to `size` (its ksize)."""
    support = (2.0 if bicubic else 1.0) * max(length / size, 1.0)
    return int(math.ceil(support)) * 2 + 1


def coefficients(start: torch.Tensor, length: torch.Tensor, size: int, limit: int,
                 bicubic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's resampling of a box [start, start + length) (float [B], whole pixels) of an axis of
    up to `limit` pixels to `size`: source index long [B, size, k] and weight int32 [B, size, k]
    (weight 0 past the box's taps), k = taps(limit, size)."""
    k = taps(limit, size, bicubic)
    length = length.double()[:, None, None]
    scale = length / size
    filterscale = scale.clamp_min(1.0)
    support = (2.0 if bicubic else 1.0) * filterscale
    xx = torch.arange(size, device=start.device, dtype=torch.float64)[None, :, None]
    center = (xx + 0.5) * scale
    lo = torch.floor(center - support + 0.5).clamp_min(0.0)
    n = torch.minimum(torch.floor(center + support + 0.5), length) - lo
    t = torch.arange(k, device=start.device, dtype=torch.float64)
    w = _filter((t + lo - center + 0.5) * (1.0 / filterscale), bicubic)
    w = torch.where(t < n, w, torch.zeros_like(w))
    total = w[..., 0]
    for i in range(1, k):   # PIL's summation order, so its normalised weights to the last bit
        total = total + w[..., i]
    w = w / torch.where(total != 0, total, torch.ones_like(total))[..., None]
    scaled = w * (1 << _BITS)
    weight = torch.where(scaled < 0, torch.trunc(scaled - 0.5), torch.trunc(scaled + 0.5))
    # a tap past the box has weight 0: any index inside the box will do
    first = start.double()[:, None, None]
    index = torch.minimum(first + lo + t, first + length - 1)
    return index.long(), weight.int()


def _matrix(index: torch.Tensor, weight: torch.Tensor, limit: int,
            dtype: torch.dtype) -> torch.Tensor:
    """The integer weights of one axis as a dense matrix [B, 2 * size, limit]: each weight
    split as hi * 2**11 + lo, 0 <= lo < 2**11, the hi rows first. A level (< 2**8) times either
    part is an integer below 2**19 and a row's sums stay below 2**24 (at most 32 taps): exact in
    float32 (TF32 included) whatever the order of the sums."""
    dense = torch.zeros(*index.shape[:2], limit, dtype=torch.float64, device=index.device)
    dense.scatter_add_(2, index, weight.double())
    hi = torch.floor(dense * (1.0 / _LOW))
    return torch.cat([hi, dense - hi * _LOW], 1).to(dtype)


def _round(both: torch.Tensor, dim: int) -> torch.Tensor:
    """PIL's clip8 of a pass's sums, from the hi and lo halves along dim: floor((2**11 * hi + lo
    + 2**21) / 2**22) = floor((hi + floor(lo / 2**11) + 2**10) / 2**11), all exact."""
    hi, lo = both.chunk(2, dim)
    hi = hi + torch.floor(lo * (1.0 / _LOW)).add_(_LOW / 2)
    return hi.mul_(1.0 / _LOW).floor_().clamp_(0, 255)


def _passes(x: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Horizontal pass with `first` [B, 2 * size, W], rounded, then vertical with `second`
    [B, 2 * size, H], rounded: levels x [B, C, H, W] -> [B, C, size, size]."""
    across = _round(torch.einsum("bchw,bsw->bchs", x, first), 3)
    return _round(torch.einsum("bsh,bchw->bcsw", second, across), 2)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int, bicubic: bool,
                 hflip: torch.Tensor, vflip: torch.Tensor) -> torch.Tensor:
    """torchvision's resized_crop of PIL images, then the flips: uint8 images [B, C, H, W], boxes
    [B, 4] (top, left, height, width; whole pixels inside the image), flips bool [B] -> float
    [B, C, size, size] of uint8 levels (0..255), PIL's pixels."""
    b, _, h, w = images.shape
    top, left, ch, cw = boxes.unbind(1)
    # sums exact in float32 up to 32 taps a row, beyond (shrinking more than 7.5x) in float64
    longest = max(h, w)
    dtype = torch.float32 if taps(longest, size, bicubic) <= 32 else torch.float64
    # both axes at once: columns for the first b rows, rows for the others; a flip after the
    # resize reverses the output pixels, so the rows of their matrix
    both = _matrix(*coefficients(torch.cat([left, top]), torch.cat([cw, ch]), size, longest,
                                 bicubic), longest, dtype)
    both = torch.where(torch.cat([hflip, vflip]).view(-1, 1, 1), _flip(both), both)
    cols, rows = both[:b, :, :w], both[b:, :, :h]
    # Pillow rounds after its first pass, so which axis goes first matters
    down = ((ch > size) & (ch - size > 2 * (cw - size))).view(-1, 1, 1, 1)
    with torch.autocast(images.device.type, enabled=False):   # sums exact only in float32
        x = images.to(dtype)
        if not _VERTICAL_FIRST:
            return _passes(x, cols, rows).float()
        if h != w:
            return torch.where(down, _passes(x.transpose(2, 3), rows, cols).transpose(2, 3),
                               _passes(x, cols, rows)).float()
        # square images: a vertical-first image is resized transposed, so one batched sequence
        swap = down.view(-1, 1, 1)
        x = torch.where(down, x.transpose(2, 3), x)
        out = _passes(x, torch.where(swap, rows, cols), torch.where(swap, cols, rows))
        return torch.where(down, out.transpose(2, 3), out).float()


def _flip(m: torch.Tensor) -> torch.Tensor:
    """Both halves of a [B, 2 * size, L] weight matrix with their rows reversed."""
    hi, lo = m.chunk(2, 1)
    return torch.cat([hi.flip(1), lo.flip(1)], 1)
