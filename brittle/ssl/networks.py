"""Feature networks for self-supervised pretraining: a small CNN for digits, CIFAR ResNet-18s.

Each builder returns an `nn.Module` mapping images `[B, C, H, W]` to features `[B, feature_dim]`
and sets its `feature_dim` attribute, which the SSL heads and the embedding stage read.
`SplitBatchNorm` is lightly's split batch norm in any memory layout (channels-last included).
"""
from __future__ import annotations

import torch
from lightly.models.batchnorm import SplitBatchNorm as LightlySplitBatchNorm
from torch import nn

from brittle.runtime.errors import BrittleError


def feature_dim(net: nn.Module) -> int:
    """The feature width a builder recorded on its network."""
    return int(net.__dict__["feature_dim"])


def _set_feature_dim(net: nn.Module, dim: int) -> nn.Module:
    # a plain attribute (not a buffer): it lives in the module's __dict__
    net.__dict__["feature_dim"] = int(dim)
    return net


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def small_cnn(in_channels: int = 1, width: int = 32) -> nn.Module:
    """Three conv stages (width, 2w, 4w), two 2x poolings, global average pool: 4w features."""
    net = nn.Sequential(
        *_conv_bn(in_channels, width),
        *_conv_bn(width, 2 * width), nn.MaxPool2d(2),
        *_conv_bn(2 * width, 4 * width), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
    return _set_feature_dim(net, 4 * width)


def resnet18_cifar(in_channels: int = 3) -> nn.Module:
    """torchvision's ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool): 512
    features."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return _set_feature_dim(net, 512)


def lightly_resnet(name: str = "resnet-18", num_splits: int = 0, in_channels: int = 3,
                   width: float = 1.0) -> nn.Module:
    """lightly's CIFAR ResNet (`ResNetGenerator`) as the paper's reference code and lightly's
    CIFAR-10 benchmark use it: its layers up to the classifier as a sequence, then global average
    pooling. Being a sequence of lightly's modules it skips the ReLU its own forward applies after
    the stem, as the reference's backbones do. `num_splits` > 0 makes every batch norm a split
    batch norm (statistics per 1/num_splits of the batch, which MoCo's batch shuffle relies on on
    one device); training batches must then be a multiple of num_splits (`batch_multiple`).
    `width` scales every layer's channels (1: the paper's)."""
    from lightly.models import ResNetGenerator

    if num_splits < 0:
        raise BrittleError(f"backbone.net.num_splits={num_splits} is out of range; use 0 "
                           "(plain batch norm) or more")
    resnet = ResNetGenerator(name, width=width, num_splits=num_splits)
    _layout_free_split_norms(resnet)
    if in_channels != 3:
        resnet.conv1 = nn.Conv2d(in_channels, resnet.conv1.out_channels, 3, stride=1, padding=1,
                                 bias=False)
    net = nn.Sequential(*list(resnet.children())[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net.__dict__["batch_multiple"] = max(1, int(num_splits))
    return _set_feature_dim(net, resnet.linear.in_features)


class SplitBatchNorm(LightlySplitBatchNorm):
    """lightly's split batch norm (the same parameters, buffers, splits and evaluation), whose
    training step keeps the input's memory layout. lightly's reshapes the batch with `view` to
    [B / S, S * C, H, W], which needs the contiguous layout; a channels-last batch is instead
    normalised through a [B / S, S, C, H, W] view of itself (split s: images s, s + S, ..., as
    lightly's reshape groups them), statistics in float32."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.is_contiguous() or not (self.training or not self.track_running_stats):
            return super().forward(input)
        n, c, h, w = input.shape
        s = self.num_splits
        # [B / S, S, C, H, W], at least float32 (bf16 and fp16 batches: statistics in float32)
        x = input.unflatten(0, (n // s, s)).to(torch.promote_types(input.dtype, torch.float32))
        var, mean = torch.var_mean(x, dim=(0, 3, 4), correction=0)         # [S, C] each
        momentum = 0.0 if self.momentum is None else float(self.momentum)
        running_mean, running_var = self.running_mean, self.running_var
        if self.track_running_stats and running_mean is not None and running_var is not None:
            count = (n // s) * h * w
            with torch.no_grad():   # as F.batch_norm: the unbiased variance enters the running one
                running_mean.mul_(1 - momentum).add_(mean.flatten(), alpha=momentum)
                unbiased = var.flatten() * (count / max(count - 1, 1))
                running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        scale = torch.rsqrt(var + self.eps)                                  # [S, C]
        shift = -mean * scale
        if self.affine:
            scale = self.weight.to(x.dtype) * scale
            shift = self.bias.to(x.dtype) + shift * self.weight.to(x.dtype)
        out = x * scale[None, :, :, None, None] + shift[None, :, :, None, None]
        return out.flatten(0, 1).to(input.dtype)


def _layout_free_split_norms(net: nn.Module) -> None:
    """Every lightly split batch norm of net replaced by brittle's (same state, any layout)."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is LightlySplitBatchNorm:
                layer = SplitBatchNorm(child.num_features, child.num_splits)
                layer.load_state_dict(child.state_dict())
                setattr(parent, name, layer)


def batch_multiple(net: nn.Module) -> int:
    """The number a training batch must be a multiple of (split batch norm), else 1."""
    return int(net.__dict__.get("batch_multiple", 1))


def pretrained_net(arch: str, source: str = "torchvision") -> nn.Module:
    """An off-the-shelf architecture without its classifier: torchvision (resnet50, vit_b_16, ...)
    or timm (vit_small_patch16_224, ...); random weights until a checkpoint is loaded."""
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise BrittleError("backbone.source=timm needs the timm package "
                               "(pip install timm)") from None
        try:
            net = timm.create_model(arch, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise BrittleError(f"backbone.arch={arch} is not a timm model ({exc})") from None
        return _set_feature_dim(net, int(net.__dict__["num_features"]))  # timm sets a plain int
    if source != "torchvision":
        raise BrittleError(f"backbone.source={source} is not valid; use torchvision or timm")
    import torchvision
    try:
        net = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        raise BrittleError(f"backbone.arch={arch} is not a torchvision model; e.g. resnet18, "
                           f"resnet50, vit_b_16 (or backbone.source=timm)") from None
    for head in ("fc", "heads", "classifier"):
        layer = getattr(net, head, None)
        if isinstance(layer, nn.Module):
            dims = [m.in_features for m in layer.modules() if isinstance(m, nn.Linear)]
            _set_feature_dim(net, int(dims[0]) if dims else int(getattr(net, "hidden_dim", 0)))
            setattr(net, head, nn.Identity())
            return net
    raise BrittleError(f"backbone.arch={arch}: cannot find its classifier (fc, heads, classifier)")
