"""BatchNorm's running statistics in a weighted run (brittle/retrain/weighted.py): part of the
run's state, updated as torch's BatchNorm updates them (running = (1 - m) running + m x batch
statistic, the variance unbiased) but as differentiable functions of the parameters, and read
out in eval mode by the same formula as torch's, differentiably, so a metagradient reaches the
trained model's normalisation through every step.

The training forward itself is torch's own BatchNorm (the batch's statistics normalise the batch,
as when brittle trains the arch), so the parameters follow the ordinary run's trajectory; only
the statistics the forward pass sees are recorded, from each layer's input.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

Tensors = tuple[torch.Tensor, ...]


class BatchStats:
    """The BatchNorm layers of a model, in module order; their running means and variances as a
    flat tuple (mean, var) per layer."""

    def __init__(self, model: nn.Module):
        self.layers: list[_BatchNorm] = [m for m in model.modules() if isinstance(m, _BatchNorm)]

    def __bool__(self) -> bool:
        return bool(self.layers)

    def initial(self) -> Tensors:
        """The layers' running statistics before training (copies)."""
        return tuple(_tensor(t).detach().clone() for layer in self.layers
                     for t in (layer.running_mean, layer.running_var))

    def load(self, running: Sequence[torch.Tensor]) -> None:
        """Set the layers' running statistics to `running` (in place, without gradients)."""
        with torch.no_grad():
            for i, layer in enumerate(self.layers[:len(running) // 2]):
                _tensor(layer.running_mean).copy_(running[2 * i])
                _tensor(layer.running_var).copy_(running[2 * i + 1])

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[torch.Tensor]]:
        """Within: each layer's input of the forward passes, in layer order."""
        seen: list[torch.Tensor] = []
        hooks = [layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
                 for layer in self.layers]
        try:
            yield seen
        finally:
            for hook in hooks:
                hook.remove()

    def updated(self, running: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor]
                ) -> Tensors:
        """The running statistics after one training forward whose layer inputs were `inputs`."""
        out = []
        for i, (layer, x) in enumerate(zip(self.layers, inputs)):
            dims = [d for d in range(x.dim()) if d != 1]
            m = float(layer.momentum or 0.0)   # None is refused (statistics_problem)
            mean, var = x.mean(dims), x.var(dims, unbiased=True)
            out += [running[2 * i] * (1 - m) + mean * m, running[2 * i + 1] * (1 - m) + var * m]
        return tuple(out)

    @contextlib.contextmanager
    def reading(self, running: Sequence[torch.Tensor]) -> Iterator[None]:
        """Within (the model in eval mode): every layer normalises with `running`, by torch's
        eval formula written out, so gradients reach the statistics."""
        def hook(i: int):
            def normalise(module: nn.Module, args: tuple, _out: torch.Tensor) -> torch.Tensor:
                layer, x = self.layers[i], args[0]
                shape = [1, -1] + [1] * (x.dim() - 2)
                mean, var = running[2 * i].view(shape), running[2 * i + 1].view(shape)
                y = (x - mean) / torch.sqrt(var + layer.eps)
                if layer.affine:
                    y = y * _tensor(layer.weight).view(shape) + _tensor(layer.bias).view(shape)
                return y
            return normalise

        hooks = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(self.layers)]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()


def statistics_problem(model: nn.Module) -> str | None:
    """What about a model's BatchNorm layers the run cannot follow, or None: a cumulative
    average (momentum None) or no running statistics (the eval read-out would use the batch's)."""
    for layer in BatchStats(model).layers:
        if layer.momentum is None or not layer.track_running_stats:
            return (f"{type(layer).__name__} with momentum=None or track_running_stats=False")
    return None


def _tensor(t: object) -> torch.Tensor:
    """A layer's tensor attribute, known to be set (its running statistics, its affine weights)."""
    assert isinstance(t, torch.Tensor)
    return t
