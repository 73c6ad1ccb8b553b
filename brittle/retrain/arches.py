"""Classifiers retrained inside counterfactual tests: MLP and small CNN (digits), ResNet-9 (CIFAR).

Every builder takes `in_shape` (C, H, W) and `num_classes` and returns a module mapping float
images `[B, C, H, W]` to logits `[B, num_classes]`.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn


class MLP(nn.Sequential):
    """Flatten, then `hidden` fully connected ReLU layers, then a linear classifier."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (256,)):
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(in_shape[0] * in_shape[1] * in_shape[2])
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(inplace=True)]
            width = int(h)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Sequential):
    """Two conv-BN-ReLU stages with 2x pooling, global average pool, linear: for 8x8 digits."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, width: int = 32):
        super().__init__(
            _conv_bn(int(in_shape[0]), width), nn.MaxPool2d(2),
            _conv_bn(width, 2 * width), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
        )


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x):  # type: ignore[override]
        return x + self.body(x)


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):  # type: ignore[override]
        return x * self.factor


class ResNet9(nn.Sequential):
    """The ResNet-9 of the paper's retraining recipe (Myrtle.ai / FFCV CIFAR-10 example):
    prep 64, [128 + pool + residual], [256 + pool], [512 + pool + residual], global max-pool,
    linear, logits scaled by 1/8. Widths scale with `width` (64 is the paper's)."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, width: int = 64):
        w = int(width)
        super().__init__(
            _conv_bn(int(in_shape[0]), w),
            _conv_bn(w, 2 * w), nn.MaxPool2d(2), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            _conv_bn(4 * w, 8 * w), nn.MaxPool2d(2), _Residual(8 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes, bias=False),
            _Scale(0.125),
        )
