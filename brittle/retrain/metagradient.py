"""Exact metagradients of a weighted training run (MAGIC: Ilyas & Engstrom 2025, arXiv
2504.16430): the gradient of targets' margins after training with respect to every training
image's loss weight, through every optimiser step.

Reverse mode: the cotangent of the final state (each target's margin gradient; zero for the
momentum buffers) is carried back one step at a time by `WeightedRun.backward_step` (one
vector-Jacobian product of the step: the Hessian-vector product of the weighted loss, weight
decay, momentum and the update), and each step adds its batch's share d/dw_i. The targets share
every pass: the cotangents carry a leading target dimension (autograd's batched gradients).

The backward pass needs the state before every step, in reverse. The forward run keeps one state
every `every` steps (default ceil(sqrt(steps))); the backward pass replays one segment at a time
from its checkpoint, last segment first, holding its `every` states. Memory: ceil(steps / every)
+ every states, O(sqrt(steps)), for one extra forward run. `every=1` keeps every state (no
replay). The replay repeats the forward run's arithmetic, so its states are the forward run's,
bit for bit (tests/scorers/test_magic.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from brittle.retrain.batchstats import BatchStats
from brittle.retrain.loop import step_count
from brittle.retrain.recipe import Recipe
from brittle.retrain.weighted import WeightedRun
from brittle.retrain.weighted_state import State


def checkpoint_every(steps: int, every: int | None) -> int:
    """The steps between checkpoints: `every`, or ceil(sqrt(steps)) (MAGIC's O(sqrt) memory)."""
    if every is not None:
        return max(1, int(every))
    return max(1, math.ceil(math.sqrt(steps)))


@dataclass(frozen=True)
class Forward:
    """A weighted run's forward pass: its final state and its checkpoints {step: state}, every
    `every` steps."""
    final: State
    kept: dict[int, State]
    every: int


def forward(run: WeightedRun, w: torch.Tensor, every: int | None = None) -> Forward:
    """The forward pass with weights w float [N], keeping the backward pass's checkpoints."""
    k = checkpoint_every(len(run.steps), every)
    final, kept = run.run(w, keep=k)
    return Forward(final, kept, k)


def replay(run: WeightedRun, w: torch.Tensor, fwd: Forward, start: int) -> list[State]:
    """The states before steps start .. start + every - 1 (fewer at the end), recomputed from the
    checkpoint at `start`."""
    stop = min(start + fwd.every, len(run.steps))
    states = [fwd.kept[start]]
    for s in range(start, stop - 1):
        states.append(run.step(states[-1], w, s))
    return states


def margins(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct-class logit minus the highest other logit, per row of logits [T, C]."""
    correct = out.gather(1, y[:, None]).squeeze(1)
    other = out.scatter(1, y[:, None], float("-inf")).max(1).values
    return correct - other


def margin_cotangent(run: WeightedRun, state: State, x: torch.Tensor, y: torch.Tensor) -> State:
    """d margin_t / d state for targets x [T, ...] with labels y int64 [T], the trained model read
    out in eval mode: per parameter and running statistic [T, ...]; zero for the momentum
    buffers (the margin does not read them)."""
    params = tuple(p.detach().requires_grad_() for p in state.params)
    running = tuple(r.detach().requires_grad_() for r in state.running or ())
    m = margins(run.readout(State(params, state.momenta, running or None), x), y)
    eye = torch.eye(len(y), dtype=m.dtype, device=m.device)
    grads = torch.autograd.grad(m, (*params, *running), grad_outputs=eye, is_grads_batched=True,
                                allow_unused=True)
    grads = tuple(torch.zeros(len(y), *t.shape, dtype=t.dtype, device=t.device) if g is None
                  else g for g, t in zip(grads, (*params, *running)))
    k = len(params)
    momenta = None if state.momenta is None else tuple(
        torch.zeros_like(g) for g in grads[:k])
    return State(tuple(grads[:k]), momenta, tuple(grads[k:]) or None)


def metagradients(run: WeightedRun, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  fwd: Forward | None = None) -> torch.Tensor:
    """d margin_t(final state) / d w_i, float [T, N], for targets x [T, ...], labels y [T], at
    weights w float [N]. `fwd`: the forward pass of w when already run (several chunks of
    targets share one)."""
    fwd = forward(run, w) if fwd is None else fwd
    adjoint = margin_cotangent(run, fwd.final, x, y)
    dw = torch.zeros(len(y), run.x.shape[0], dtype=run.x.dtype, device=run.x.device)
    for start in sorted(fwd.kept, reverse=True):
        states = replay(run, w, fwd, start)
        for s in reversed(range(start, start + len(states))):
            adjoint, dwb = run.backward_step(states[s - start], w, s, adjoint)
            dw.index_add_(1, run.steps[s].index, dwb.detach())
        adjoint = adjoint.detached()
    return dw


def memory_bytes(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor,
                 every: int | None = None) -> tuple[int, int]:
    """(bytes the backward pass of the run of `build` and `recipe` on x [N, ...] holds whatever
    the targets: checkpoints and one segment's states; bytes per target: its cotangents of the
    state before and after a step, about four copies of one batch's activations that the
    batched step's second-order pass makes per target, and its row of weight gradients). An
    estimate from sizes, not a measurement; nothing is trained."""
    bs, steps = step_count(x.shape[0], recipe.batch_size, recipe.epochs)
    k = checkpoint_every(steps, every)
    with torch.random.fork_rng(devices=[]):   # the caller's random stream stays as it was
        model = build().to(device=x.device, dtype=x.dtype)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    running = sum(t.numel() * t.element_size() for t in BatchStats(model).initial())
    state = (2 * params if recipe.momentum != 0 else params) + running
    shared = (math.ceil(steps / k) + k) * state
    per_target = 2 * state + 4 * activation_bytes(model, x[:bs]) + x.shape[0] * x.element_size()
    return shared, per_target


def activation_bytes(model: nn.Module, xb: torch.Tensor) -> int:
    """Bytes of the outputs of every leaf module of `model` on the batch xb [B, ...]."""
    sizes: list[int] = []
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(
        lambda _m, _i, out: sizes.append(out.numel() * out.element_size())) for m in leaves]
    try:
        with torch.no_grad():
            model(xb)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(sizes)
