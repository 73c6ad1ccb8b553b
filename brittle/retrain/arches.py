"""Classifiers retrained inside counterfactual tests: MLP and small CNN (digits), ResNet-9 (CIFAR:
Myrtle's and the FFCV variant the paper's reference code trains),
and the transfer-study architectures (MobileNetV2 from torchvision; ViT, Swin, MLP-Mixer and
ConvMixer from timm, sized for small images).

Every builder takes `in_shape` (C, H, W) and `num_classes` and returns a module mapping float
images `[B, C, H, W]` to logits `[B, num_classes]`.
"""
from __future__ import annotations

from collections.abc import Sequence

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


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1,
             padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


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

    def forward(self, x):
        return x + self.body(x)


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class ResNet9(nn.Sequential):
    """The Myrtle.ai ResNet-9 that the paper's footnote cites: prep 64, [128 + pool + residual],
    [256 + pool], [512 + pool + residual], global max-pool, linear, logits scaled by 1/8.
    Widths scale with `width` (64 is Myrtle's). The reference code trains `ResNet9FFCV`."""

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


class ResNet9FFCV(nn.Sequential):
    """The ResNet-9 of FFCV's CIFAR-10 example, which the paper's reference code retrains:
    conv 64, conv 128 (5x5, stride 2), residual 128, conv 256, max-pool, residual 256, conv 128
    (no padding), global max-pool, bias-free linear, logits scaled by 0.2. Its width ends at
    128, not Myrtle's 512. Widths scale with `width` (64 is the reference's)."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, width: int = 64):
        w = int(width)
        super().__init__(
            _conv_bn(int(in_shape[0]), w),
            _conv_bn(w, 2 * w, kernel=5, stride=2, padding=2), _Residual(2 * w),
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2), _Residual(4 * w),
            _conv_bn(4 * w, 2 * w, padding=0),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes, bias=False),
            _Scale(0.2),
        )


def _patch(size: int, wanted: int, min_tokens: int = 4) -> int:
    """The configured patch size, shrunk so that the image still gives a grid of tokens (8x8
    digits cannot use CIFAR's 4-pixel patches and keep any spatial structure)."""
    patch = max(1, min(int(wanted), size // min_tokens))
    while size % patch:
        patch -= 1
    return patch


def resnet18(in_shape: Sequence[int], num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 with its ImageNet stem (7x7 stride-2 conv, max-pool): the network
    the paper retrains on ImageNet (appendix A.2). Any input size (global average pooling)."""
    from torchvision.models import resnet18 as tv_resnet18

    net = tv_resnet18(weights=None, num_classes=num_classes)
    if int(in_shape[0]) != 3:
        net.conv1 = nn.Conv2d(int(in_shape[0]), 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


def mobilenet_v2(in_shape: Sequence[int], num_classes: int, width_mult: float = 1.0,
                 min_grid: int = 2) -> nn.Module:
    """torchvision's MobileNetV2 adapted to small images as is usual for CIFAR: stride-1 stem and
    first stride-2 stage at stride 1 (32 -> 4 px); further stride-2 stages also run at stride 1
    where they would shrink the grid below `min_grid` (8x8 digits keep a 2x2 grid)."""
    from torchvision.models import mobilenet_v2 as tv_mobilenet_v2
    from torchvision.models.mobilenetv2 import InvertedResidual

    net = tv_mobilenet_v2(num_classes=num_classes, width_mult=width_mult)
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(int(in_shape[0]), stem.out_channels, 3, stride=1, padding=1,
                                   bias=False)
    size, first = int(in_shape[1]), True
    for block in net.features:
        if isinstance(block, InvertedResidual) and block.stride == 2:
            if first or size // 2 < min_grid:
                depthwise = next(m for m in block.conv.modules() if isinstance(m, nn.Conv2d)
                                 and m.groups > 1)
                depthwise.stride, block.stride = (1, 1), 1
            else:
                size //= 2
            first = False
    return net


def vit(in_shape: Sequence[int], num_classes: int, patch_size: int = 4, embed_dim: int = 192,
        depth: int = 6, num_heads: int = 3) -> nn.Module:
    """timm's VisionTransformer at the image's size (a ViT-Tiny-like width by default)."""
    from timm.models.vision_transformer import VisionTransformer

    size = int(in_shape[1])
    return VisionTransformer(img_size=size, patch_size=_patch(size, patch_size),
                             in_chans=int(in_shape[0]), num_classes=num_classes,
                             embed_dim=embed_dim, depth=depth, num_heads=num_heads)


def swin_t(in_shape: Sequence[int], num_classes: int, patch_size: int = 2, embed_dim: int = 96,
           window_size: int = 4, depths: Sequence[int] = (2, 2, 6),
           num_heads: Sequence[int] = (3, 6, 12)) -> nn.Module:
    """timm's SwinTransformer for small images: stages stop while the grid still holds a window."""
    from timm.models.swin_transformer import SwinTransformer

    size = int(in_shape[1])
    patch = _patch(size, patch_size, min_tokens=window_size)
    stages = 1
    while stages < len(depths) and (size // patch) >> stages >= window_size:
        stages += 1
    return SwinTransformer(img_size=size, patch_size=patch, in_chans=int(in_shape[0]),
                           num_classes=num_classes, embed_dim=embed_dim,
                           depths=tuple(depths[:stages]), num_heads=tuple(num_heads[:stages]),
                           window_size=window_size)


def mlp_mixer(in_shape: Sequence[int], num_classes: int, patch_size: int = 4, embed_dim: int = 256,
              num_blocks: int = 8) -> nn.Module:
    """timm's MLP-Mixer at the image's size."""
    from timm.models.mlp_mixer import MlpMixer

    size = int(in_shape[1])
    return MlpMixer(img_size=size, patch_size=_patch(size, patch_size), in_chans=int(in_shape[0]),
                    num_classes=num_classes, embed_dim=embed_dim, num_blocks=num_blocks)


def conv_mixer(in_shape: Sequence[int], num_classes: int, dim: int = 256, depth: int = 8,
               kernel_size: int = 5, patch_size: int = 2) -> nn.Module:
    """timm's ConvMixer (the CIFAR-10 ConvMixer-256/8 by default)."""
    from timm.models.convmixer import ConvMixer

    size = int(in_shape[1])
    return ConvMixer(dim=dim, depth=depth, kernel_size=kernel_size,
                     patch_size=_patch(size, patch_size),
                     in_chans=int(in_shape[0]), num_classes=num_classes)
