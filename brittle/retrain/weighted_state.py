"""The state of a weighted run (brittle/retrain/weighted.py) and the arithmetic of one of its
steps: the weighted loss, torch.optim.SGD's update written out of place, and the cotangents of
the state before a step from a vector-Jacobian product of it."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from brittle.retrain.recipe import Recipe

Tensors = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class State:
    """The run before a step: parameters (the model's order), SGD momentum buffers (None before
    the first step, as torch.optim.SGD has none yet, and always without momentum) and BatchNorm's
    running statistics (brittle/retrain/batchstats.py; None without BatchNorm)."""
    params: Tensors
    momenta: Tensors | None
    running: Tensors | None = None

    def detached(self) -> State:
        return State(tuple(p.detach() for p in self.params),
                     None if self.momenta is None else tuple(v.detach() for v in self.momenta),
                     None if self.running is None else tuple(r.detach() for r in self.running))

    def nbytes(self) -> int:
        parts = [self.params, self.momenta or (), self.running or ()]
        return sum(t.numel() * t.element_size() for part in parts for t in part)


def weighted_loss(out: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                  smoothing: float) -> torch.Tensor:
    """mean_i w_i * CE_smoothed(out_i, y_i) of logits out [B, C], labels y [B], weights w [B],
    written as torch's mean cross-entropy computes it (log-softmax, the target's term, the
    smoothing term over every class), so at w = 1 its gradient is F.cross_entropy's, bit for
    bit."""
    lp = torch.log_softmax(out, 1)
    b = out.shape[0]
    nll = -(w * lp.gather(1, y[:, None]).squeeze(1)).sum() / b
    if smoothing == 0:
        return nll
    smooth = -(w * lp.sum(1)).sum() / b
    return (1 - smoothing) * nll + smooth * (smoothing / out.shape[1])


def sgd_update(state: State, grads: Sequence[torch.Tensor], lr: float, recipe: Recipe) -> State:
    """The state after torch.optim.SGD's step (its single-tensor arithmetic, out of place, so
    autograd can differentiate it) with the loss gradients `grads`."""
    params, momenta = [], []
    for i, (p, g) in enumerate(zip(state.params, grads)):
        if recipe.weight_decay != 0:
            g = g.add(p, alpha=recipe.weight_decay)
        if recipe.momentum != 0:
            buf = g.clone() if state.momenta is None else \
                state.momenta[i].mul(recipe.momentum).add(g, alpha=1)
            momenta.append(buf)
            g = g.add(buf, alpha=recipe.momentum) if recipe.nesterov else buf
        params.append(p.add(g, alpha=-lr))
    return State(tuple(params), tuple(momenta) if momenta else None)


def before(back: Sequence[torch.Tensor | None], params: Tensors,
            momenta: Tensors | None, running: Tensors | None, adjoint: State) -> State:
    """The cotangents of the state before a step from the vector-Jacobian product `back` of
    (parameters, momenta, running statistics, batch weights)."""
    k, v = len(params), len(momenta or ())
    before_p = tuple(zero_if_none(g, c) for g, c in zip(back[:k], adjoint.params))
    before_v = None if momenta is None else tuple(
        zero_if_none(g, c) for g, c in zip(back[k:k + v], adjoint.params))
    before_r = None if running is None or adjoint.running is None else tuple(
        zero_if_none(g, c) for g, c in zip(back[k + v:-1], adjoint.running))
    return State(before_p, before_v, before_r)


def zero_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A cotangent autograd leaves out (an input the outputs do not depend on) as zeros."""
    return torch.zeros_like(like) if grad is None else grad
