"""The transfer-study networks of the paper's reference code (vasusingla/simple-data-attribution),
written here from their published structure: the common CIFAR MobileNetV2 (its
models/mobilenetv2.py) and the four-stage Swin-T it builds for CIFAR-10 (its models/swin.py, called
from train_utils.create_model with window 4 and patch-merging factors (2, 2, 2, 1)).

Both take `in_shape` (C, H, W) and `num_classes` and map float images [B, C, H, W] to logits
[B, num_classes]. They keep the reference's layers and widths at 32x32; smaller images (8x8
digits) run through the same layers (global pooling, windows clipped to the token grid).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from brittle.runtime.errors import BrittleError

# (expansion, output channels, blocks, stride of the stage's first block): MobileNetV2's table
# with the CIFAR change of the reference (the second stage at stride 1, as is the stem)
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                      (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _bn_conv(cin: int, cout: int, kernel: int = 1, stride: int = 1,
             groups: int = 1) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                     bias=False)
    return [conv, nn.BatchNorm2d(cout)]


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise (carrying the stride), linear 1x1 projection, all with batch
    norm and ReLU after the first two. At stride 1 the input is added back, through a 1x1 conv
    with batch norm where the channel count changes; at stride 2 there is no shortcut. The
    expansion conv is kept at expansion 1 too, as in the reference."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = expansion * cin
        self.body = nn.Sequential(
            *_bn_conv(cin, hidden), nn.ReLU(inplace=True),
            *_bn_conv(hidden, hidden, 3, stride, groups=hidden), nn.ReLU(inplace=True),
            *_bn_conv(hidden, cout))
        self.shortcut: nn.Module | None = None
        if stride == 1:
            self.shortcut = nn.Identity() if cin == cout else nn.Sequential(*_bn_conv(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class MobileNetV2CIFAR(nn.Sequential):
    """The common CIFAR MobileNetV2: 3x3 stem (32 channels, stride 1), the inverted-residual stages
    of `MOBILENETV2_STAGES` (total stride 8), 1x1 conv to 1280, global average pool, linear.
    The reference pools with a fixed 4x4 window (32x32 input); the global pool equals it there."""

    def __init__(self, in_shape: Sequence[int], num_classes: int):
        layers: list[nn.Module] = [*_bn_conv(int(in_shape[0]), 32, 3), nn.ReLU(inplace=True)]
        cin = 32
        for expansion, cout, blocks, stride in MOBILENETV2_STAGES:
            for i in range(blocks):
                layers.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        super().__init__(*layers, *_bn_conv(cin, 1280), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1280, num_classes))


def shifted_window_mask(size: int, window: int, shift: int) -> torch.Tensor:
    """Additive attention mask [n_windows, window^2, window^2] for a cyclically shifted grid of
    size x size tokens (row-major windows): -inf between tokens that were not neighbours before
    the shift (they meet only through the wrap-around), 0 otherwise."""
    bands = torch.zeros(size, dtype=torch.long)
    if shift:
        bands[size - window:size - shift], bands[size - shift:] = 1, 2
    region = bands[:, None] * 3 + bands[None, :]                       # [size, size]
    n = size // window
    region = region.reshape(n, window, n, window).permute(0, 2, 1, 3).reshape(n * n, -1)
    same = region[:, :, None] == region[:, None, :]
    return torch.zeros(same.shape).masked_fill(~same, float("-inf"))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows of a [B, H, W, C] token grid,
    optionally on the grid cyclically shifted by half a window. As in the reference, heads have
    a fixed width (`head_dim`), and one learned relative-position bias table
    [(2w - 1), (2w - 1)] is shared by the heads."""

    offset: torch.Tensor   # buffers (declared: nn.Module types attributes as Tensor | Module)
    mask: torch.Tensor

    def __init__(self, dim: int, heads: int, head_dim: int, window: int, shifted: bool, size: int):
        super().__init__()
        self.heads, self.head_dim, self.window = heads, head_dim, window
        self.shift = window // 2 if shifted else 0
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, dim)
        self.position_bias = nn.Parameter(torch.randn(2 * window - 1, 2 * window - 1))
        rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        coords = torch.stack([rows.flatten(), cols.flatten()])                   # [2, w^2]
        # [2, w^2 (query), w^2 (key)]: the key's row and column offsets from the query's
        offset = coords[:, None, :] - coords[:, :, None] + window - 1
        self.register_buffer("offset", offset, persistent=False)
        mask = shifted_window_mask(size, window, self.shift) if self.shift else torch.zeros(0)
        self.register_buffer("mask", mask, persistent=False)

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        """[B, H, W, heads * d] -> [B, heads, n_windows, w^2, d]"""
        b, h, w_, _ = t.shape
        w = self.window
        t = t.reshape(b, h // w, w, w_ // w, w, self.heads, self.head_dim)
        t = t.permute(0, 5, 1, 3, 2, 4, 6)
        return t.reshape(b, self.heads, (h // w) * (w_ // w), w * w, self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w_, _ = x.shape
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
        q, k, v = (self._windows(t) for t in self.qkv(x).chunk(3, dim=-1))
        scores = q @ k.transpose(-2, -1) * self.head_dim ** -0.5
        scores = scores + self.position_bias[self.offset[0], self.offset[1]]
        if self.shift:
            scores = scores + self.mask
        out = scores.softmax(dim=-1) @ v                      # [B, heads, n_windows, w^2, d]
        w = self.window
        out = out.reshape(b, self.heads, h // w, w_ // w, w, w, self.head_dim)
        out = out.permute(0, 2, 4, 3, 5, 1, 6)
        out = self.out(out.reshape(b, h, w_, self.heads * self.head_dim))
        if self.shift:
            out = torch.roll(out, (self.shift, self.shift), dims=(1, 2))
        return out


class SwinBlock(nn.Module):
    """Pre-norm residual window attention, then a pre-norm residual MLP (4x width, GELU)."""

    def __init__(self, dim: int, heads: int, head_dim: int, window: int, shifted: bool, size: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = WindowAttention(dim, heads, head_dim, window, shifted, size)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Non-overlapping f x f patches of a [B, H, W, C] grid, concatenated and mapped linearly
    (with bias, no norm, as in the reference) to `cout` channels: [B, H / f, W / f, cout]."""

    def __init__(self, cin: int, cout: int, factor: int):
        super().__init__()
        self.factor = factor
        self.linear = nn.Linear(cin * factor * factor, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        f = self.factor
        x = x.reshape(b, h // f, f, w // f, f, c).permute(0, 1, 3, 2, 4, 5)
        return self.linear(x.reshape(b, h // f, w // f, f * f * c))


class SwinCIFAR(nn.Module):
    """The reference's Swin-T for CIFAR-10: four stages of (2, 2, 6, 2) blocks of widths 96, 192,
    384, 768 with 3, 6, 12, 24 heads of width 32, each stage opened by patch merging with factors
    (2, 2, 2, 1), alternating plain and shifted 4x4 windows; mean over tokens, layer norm, linear.
    No absolute position embedding. A stage whose grid is smaller than the window uses the grid."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), heads: Sequence[int] = (3, 6, 12, 24),
                 head_dim: int = 32, window: int = 4, factors: Sequence[int] = (2, 2, 2, 1)):
        super().__init__()
        size, cin = int(in_shape[1]), int(in_shape[0])
        stages: list[nn.Module] = []
        for i, (depth, n_heads, factor) in enumerate(zip(depths, heads, factors)):
            if size % factor:
                raise BrittleError(f"arch=swin_t_cifar cannot merge {factor}x{factor} patches of a "
                                   f"{size}x{size} grid; use images of side {_side(factors)} x 2^k")
            size //= factor
            win = min(window, size)
            if size % win:
                raise BrittleError(f"arch=swin_t_cifar cannot tile a {size}x{size} grid with "
                                   f"{win}x{win} windows; use images of side "
                                   f"{_side(factors)} x 2^k")
            dim = embed_dim * 2 ** i
            blocks = [SwinBlock(dim, int(n_heads), head_dim, win, j % 2 == 1, size)
                      for j in range(int(depth))]
            stages.append(nn.Sequential(PatchMerging(cin, dim, int(factor)), *blocks))
            cin = dim
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.LayerNorm(cin), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.stages(x.permute(0, 2, 3, 1))               # [B, H', W', C]
        return self.head(tokens.mean(dim=(1, 2)))


def _side(factors: Sequence[int]) -> int:
    return math.prod(int(f) for f in factors)
