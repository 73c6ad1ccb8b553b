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
    state = read_torch_file(path, "backbone weights", "a state dict saved by brittle", weights_only=True)
    return _load_checked(net, state, path)


def _load_checked(net: nn.Module, state: dict, path: Path) -> nn.Module:
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        raise BrittleError(
            f"checkpoint {path} does not fit backbone {type(net).__name__}: "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:3]}, {len(mismatched)} shape mismatches {mismatched[:2]}")
    net.load_state_dict(state)
    return net


# Prefixes that release checkpoints put before the backbone's own keys (MoCo v2/v3, DINO, DDP).
_PREFIXES = ("module.", "encoder_q.", "base_encoder.", "backbone.", "encoder.", "model.")
# Entries of release checkpoints that hold the backbone (DINO: teacher), in order of preference.
_STATE_KEYS = ("state_dict", "teacher", "model", "student")


def pretrained_net(arch: str, source: str = "torchvision") -> nn.Module:
    """An off-the-shelf architecture without its classifier: torchvision (resnet50, vit_b_16, ...)
    or timm (vit_small_patch16_224, ...); random weights until a checkpoint is loaded."""
    if source == "timm":
        try:
            import timm
        except ImportError:
            raise BrittleError("backbone.source=timm needs the timm package (pip install timm)") from None
        try:
            net = timm.create_model(arch, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise BrittleError(f"backbone.arch={arch} is not a timm model ({exc})") from None
        net.feature_dim = int(net.num_features)
        return net
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
            net.feature_dim = int(dims[0]) if dims else int(getattr(net, "hidden_dim", 0))
            setattr(net, head, nn.Identity())
            return net
    raise BrittleError(f"backbone.arch={arch}: cannot find its classifier (fc, heads, classifier)")


def read_torch_file(path: Path, setting: str, expected: str, weights_only: bool = False) -> object:
    """torch.load of a file the user handed in; a file that is not one is one clear error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # pickle, zip and torch raise many types for a file that is not one
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise BrittleError(f"{setting}={path} is not a PyTorch file ({type(exc).__name__}: {reason}); "
                           f"give {expected}") from None


def release_state_dict(path: Path, net: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone weights inside a release checkpoint (a plain state dict, MoCo v2/v3, DINO):
    pick the entry holding them, strip wrapper prefixes, drop heads the backbone does not have."""
    blob = read_torch_file(path, "backbone.checkpoint", "a state dict or a MoCo/DINO release checkpoint (.pth)")
    if isinstance(blob, dict):
        for key in _STATE_KEYS:
            if isinstance(blob.get(key), dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict):
        raise BrittleError(f"backbone.checkpoint={path} holds a {type(blob).__name__}, not a state dict")
    own = set(net.state_dict())
    state: dict[str, torch.Tensor] = {}
    for key, value in blob.items():
        if "momentum_encoder." in key or "encoder_k." in key:
            continue  # MoCo's key encoder: the query/base encoder is the backbone
        name = key
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if name.startswith(prefix) and name not in own:
                    name, changed = name[len(prefix):], True
        if name.split(".")[0] in ("fc", "head", "heads", "classifier") and name not in own:
            continue  # projection or classification heads of the pretraining method
        state[name] = value
    return state


def load_release_checkpoint(net: nn.Module, path: Path) -> nn.Module:
    """Load a release checkpoint into `net`, or fail listing missing and unexpected keys."""
    path = Path(path)
    if not path.exists():
        raise BrittleError(f"backbone.checkpoint={path} does not exist")
    return _load_checked(net, release_state_dict(path, net), path)
