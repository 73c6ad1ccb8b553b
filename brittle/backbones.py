"""Feature networks for self-supervised pretraining: a small CNN for digits, CIFAR ResNet-18.

Each builder returns an `nn.Module` mapping images `[B, C, H, W]` to features `[B, feature_dim]`
and sets its `feature_dim` attribute, which the SSL heads and the embedding stage read.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from brittle.errors import BrittleError


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def small_cnn(in_channels: int = 1, width: int = 32) -> nn.Module:
    """Three conv stages (width, 2w, 4w), two 2x poolings, global average pool: 4w features."""
    net = nn.Sequential(
        *_conv_bn(in_channels, width),
        *_conv_bn(width, 2 * width), nn.MaxPool2d(2),
        *_conv_bn(2 * width, 4 * width), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    net.feature_dim = 4 * width
    return net


def resnet18_cifar(in_channels: int = 3) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool): 512 features."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    net.feature_dim = 512
    return net


def load_backbone_weights(net: nn.Module, path: Path) -> nn.Module:
    """Load a state dict saved by the pretrain stage; a mismatch names the offending keys."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        raise BrittleError(
            f"checkpoint {path} does not fit backbone {type(net).__name__}: "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:3]}, {len(mismatched)} shape mismatches {mismatched[:2]}"
        )
    net.load_state_dict(state)
    return net
