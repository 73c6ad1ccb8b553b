"""Backbone weights from files: brittle's own saved state dicts, and release checkpoints (plain
state dicts, MoCo v2/v3, DINO) with their wrapper prefixes, key encoders and heads handled.
A checkpoint that does not fit names its missing, unexpected and mismatched keys."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from brittle.runtime.errors import BrittleError
from brittle.runtime.files import read_torch_file


def load_backbone_weights(net: nn.Module, path: Path) -> nn.Module:
    """Load a state dict saved by the pretrain stage; a mismatch names the offending keys."""
    state = read_torch_file(path, "backbone weights", "a state dict saved by brittle")
    if not isinstance(state, dict):
        raise BrittleError(f"backbone weights {path} hold a "
                           f"{type(state).__name__}, not a state dict")
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


def release_state_dict(path: Path, net: nn.Module, trust: bool = False) -> dict[str, torch.Tensor]:
    """The backbone weights inside a release checkpoint (a plain state dict, MoCo v2/v3, DINO):
    pick the entry holding them, strip wrapper prefixes, drop heads the backbone does not have.
    The file is read without running code from it unless `trust` (backbone.trust_checkpoint)."""
    blob = read_torch_file(path, "backbone.checkpoint",
                           "a state dict or a MoCo/DINO release checkpoint (.pth)", trust=trust,
                           trust_setting="backbone.trust_checkpoint")
    if isinstance(blob, dict):
        for key in _STATE_KEYS:
            if isinstance(blob.get(key), dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict):
        raise BrittleError(f"backbone.checkpoint={path} holds a "
                           f"{type(blob).__name__}, not a state dict")
    own = set(net.state_dict())
    state: dict[str, torch.Tensor] = {}
    for key, value in blob.items():
        if "momentum_encoder." in key or "encoder_k." in key:
            continue  # MoCo's key encoder: the query/base encoder is the backbone
        name = _unwrapped(key, own)
        if name.split(".")[0] in ("fc", "head", "heads", "classifier") and name not in own:
            continue  # projection or classification heads of the pretraining method
        state[name] = value
    return state


def _unwrapped(key: str, own: set[str]) -> str:
    """`key` with wrapper prefixes stripped, one after another, while it is not a backbone key."""
    name = key
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if name.startswith(prefix) and name not in own:
                name, changed = name[len(prefix):], True
    return name


def load_release_checkpoint(net: nn.Module, path: Path, trust: bool = False) -> nn.Module:
    """Load a release checkpoint into `net`, or fail listing missing and unexpected keys."""
    path = Path(path)
    if not path.exists():
        raise BrittleError(f"backbone.checkpoint={path} does not exist")
    return _load_checked(net, release_state_dict(path, net, trust), path)
