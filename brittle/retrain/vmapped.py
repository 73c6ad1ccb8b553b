"""Several models' steps as one forward and backward pass: `trainer.together=vmap`.

torch.func.vmap maps `functional_call` of one model over the models' parameters and buffers
stacked on a leading axis: a convolution becomes one grouped convolution over all models, a
linear layer one batched matrix product, so a step costs one launch per layer whatever the
number of models. The parameters stay each model's own leaves (stacked anew every step, a
differentiable copy): each model keeps its own optimiser and gradient scaler, so an fp16
overflow skips only that model's step, as it would alone.

Batch norm: training-mode batch norm under vmap updates its running statistics in place, which
vmap allows when they are batched too; so each model's running mean, variance and batch count
become slices (views) of one stacked buffer for the duration, and its own copies at the end.
(torch.func's `replace_all_batch_norm_modules_` instead drops the running statistics, which the
trained model's evaluation needs.) Dropout and other random ops are refused (vmap's
randomness="error"): under vmap they would not follow each model's seed.

On CUDA each model's images and convolution weights are laid out so that vmap's grouped
convolution sees channels-last tensors ([B, M * C, H, W] with channels innermost) without a copy.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from brittle.retrain.loop import Autocast, Fit, Pending


def run_vmapped(models: Sequence[nn.Module], fits: Sequence[Fit], autocast: Autocast,
                channels_last: bool = False) -> None:
    """Drive the fits of models of one arch together to their end; every fit must take equally
    many steps (equal training-set sizes)."""
    pending = [next(fit, None) for fit in fits]   # each fit's set-up, then its first step
    if all(p is None for p in pending):
        return
    base = models[0]
    names = [name for name, _ in base.named_parameters()]
    params = [dict(model.named_parameters()) for model in models]
    buffers = _share_buffers(models)
    while True:
        steps = _all_or_none(pending)
        if steps is None:
            break
        stacked = {name: _stack([p[name] for p in params], channels_last) for name in names}
        xs, x_dim = _stack_inputs([p.x for p in steps], channels_last)

        def call(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (p, b), (x,))

        with autocast():
            out = vmap(call, in_dims=(0, 0, x_dim), randomness="error")(stacked, buffers, xs)
            losses = [p.loss(out[j], p.y) for j, p in enumerate(steps)]
        torch.stack([p.scale(loss) for p, loss in zip(steps, losses)]).sum().backward()
        pending = [next(fit, None) for fit in fits]
    for model in models:
        _own_buffers(model)


def _all_or_none(pending: list[Pending | None]) -> list[Pending] | None:
    done = [p is None for p in pending]
    if any(done) and not all(done):
        raise ValueError("vmapped models must take equally many steps (equal training-set sizes)")
    return None if all(done) else [p for p in pending if p is not None]


def _stack(tensors: list[torch.Tensor], channels_last: bool) -> torch.Tensor:
    """[M, ...] of M equally shaped tensors; 4-d (convolution weights) kept channels-last."""
    if channels_last and tensors[0].dim() == 4:
        return torch.stack([t.permute(0, 2, 3, 1) for t in tensors]).permute(0, 1, 4, 2, 3)
    return torch.stack(tensors)


def _stack_inputs(xs: list[torch.Tensor], channels_last: bool) -> tuple[torch.Tensor, int]:
    """The models' batches stacked, and the axis of the models: [B, M, C, H, W] laid out
    [B, H, W, M, C] (axis 1) for channels-last images, else [M, B, ...] (axis 0)."""
    if channels_last and xs[0].dim() == 4:
        return torch.stack([x.permute(0, 2, 3, 1) for x in xs], dim=3).permute(0, 3, 4, 1, 2), 1
    return torch.stack(xs), 0


def _share_buffers(models: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """Each buffer of the models stacked [M, ...]; every model's buffer becomes its slice."""
    stacked = {name: torch.stack([dict(m.named_buffers())[name] for m in models])
               for name, _ in models[0].named_buffers()}
    for j, model in enumerate(models):
        for name, value in stacked.items():
            owner, _, leaf = name.rpartition(".")
            model.get_submodule(owner)._buffers[leaf] = value[j]
    return stacked


def _own_buffers(model: nn.Module) -> None:
    """Give the model's buffers storage of their own again (not slices of a stack)."""
    for module in model.modules():
        for leaf, value in module._buffers.items():
            if value is not None:
                module._buffers[leaf] = value.clone()
