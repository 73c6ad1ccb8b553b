"""A recipe's training run with per-example loss weights, written as pure functions of its state:
the run MAGIC differentiates (brittle/scorers/magic.py) and the same-order LDS bank retrains.

The run trains on every training image, in the order brittle's own training of the same seed
takes them (brittle/retrain/loop.py: the model built under the seed, `batches` and the
augmentation drawn from the model's generator, brittle/retrain/augment.py), with the recipe's
learning-rate schedule and torch.optim.SGD's arithmetic (weight decay added to the gradient,
momentum buffer started at the first gradient, dampening 0, Nesterov when asked). A batch's loss
is the mean over its B images of w_i * l_i (l: the recipe's label-smoothed cross-entropy), so
w = 1 is the ordinary run and w_i = 0 removes image i from every batch it is drawn in, while the
data order stays that of the full run (MAGIC's single-model setting).

With w = 1 the run is the same computation as `recipe_trainer.train_one` on every image: the
loss's gradient is written as torch's mean cross-entropy computes it and the update with the
optimiser's own operations, so on a CPU the trained weights are the same bits
(tests/retrain/test_weighted.py). The state is a `State` (parameters, momentum buffers); `step`
maps one state to the next, differentiably when asked, and `backward_step` carries an adjoint
(a cotangent of the next state, batched over targets) back through one step.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from brittle.retrain.augment import augment
from brittle.retrain.batchstats import BatchStats
from brittle.retrain.loop import batches, seeded
from brittle.retrain.recipe import Recipe, lr_at, schedule_steps
from brittle.retrain.weighted_state import (
    State,
    before,
    sgd_update,
    weighted_loss,
    zero_if_none,
)


@dataclass(frozen=True)
class Drawn:
    """One step of the run's data order: the training indices of its batch int64 [B], its
    learning rate, and the model generator's state before its augmentation draws (None when the
    recipe augments nothing)."""
    index: torch.Tensor
    lr: float
    rng: torch.Tensor | None


class WeightedRun:
    """The recipe's run of seed `seed` on every image of x float [N, C, H, W] (fp32; fp64 for
    tests) with labels int64 [N]: its initial state, its drawn data order (`steps`), and its
    steps as functions of the state and the weights w float [N]."""

    def __init__(self, build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor,
                 labels: torch.Tensor, seed: int):
        self.recipe, self.x, self.labels = recipe, x, labels
        with seeded(seed, x.device) as gen:
            model = build().to(device=x.device, dtype=x.dtype)
            self.steps = self._draw(gen)
        self.model = model.train()   # train mode, as fit_steps trains (no dropout)
        self.names = [name for name, _ in model.named_parameters()]
        self.buffers = dict(model.named_buffers())
        self.stats = BatchStats(model)
        self.start = State(tuple(p.detach().clone() for p in model.parameters()), None,
                           self.stats.initial() if self.stats else None)

    def _draw(self, gen: torch.Generator) -> list[Drawn]:
        """The whole data order, drawn from the model's generator as fit_steps draws it: each
        epoch's permutation, and each step's augmentation (made here once to advance the
        generator; `batch` makes it again from the state saved before it)."""
        recipe, n = self.recipe, self.x.shape[0]
        augments = recipe.flip or recipe.translate > 0 or recipe.cutout > 0
        span = schedule_steps(recipe, n, n)   # every image kept: either schedule's span
        out = []
        for step in batches(n, recipe.batch_size, recipe.epochs, [gen]):
            index = step.positions[0]
            rng = gen.get_state() if augments else None
            if augments:
                augment(self.x[index], recipe, gen)
            out.append(Drawn(index, lr_at(step.step, span, recipe), rng))
        return out

    def batch(self, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step s's images [B, C, H, W] (augmented as the run draws them) and labels [B]."""
        drawn = self.steps[s]
        xb = self.x[drawn.index]
        if drawn.rng is not None:
            gen = torch.Generator(device=self.x.device)
            gen.set_state(drawn.rng)
            xb = augment(xb, self.recipe, gen)
        return xb, self.labels[drawn.index]

    def logits(self, params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's logits [M, C] of x [M, ...] with parameters `params`, in train mode (a
        BatchNorm layer normalises with the batch's statistics, updating copies of its own)."""
        buffers = {k: v.clone() for k, v in self.buffers.items()}
        return functional_call(self.model, ({**dict(zip(self.names, params)), **buffers}), (x,))

    def readout(self, state: State, x: torch.Tensor) -> torch.Tensor:
        """The trained model's logits [M, C] of x [M, ...] in eval mode, differentiable in the
        state's parameters and running statistics."""
        self.model.eval()
        try:
            with self.stats.reading(state.running or ()):
                return self.logits(state.params, x)
        finally:
            self.model.train()

    def _loss(self, params: Sequence[torch.Tensor], wb: torch.Tensor, s: int) -> torch.Tensor:
        xb, yb = self.batch(s)
        return weighted_loss(self.logits(params, xb), yb, wb, self.recipe.label_smoothing)

    def step(self, state: State, w: torch.Tensor, s: int) -> State:
        """The (detached) state after step s with weights w [N]."""
        params = tuple(p.detach().requires_grad_() for p in state.params)
        with self.stats.recording() as seen:
            loss = self._loss(params, w[self.steps[s].index], s)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            after = sgd_update(State(params, state.momenta), grads, self.steps[s].lr, self.recipe)
            running = None if state.running is None else self.stats.updated(state.running, seen)
        return State(after.params, after.momenta, running)

    def run(self, w: torch.Tensor, stop: int | None = None, state: State | None = None,
            start: int = 0, keep: int | None = None) -> tuple[State, dict[int, State]]:
        """The state at step `stop` (default: the end) from `state` at step `start` (default: the
        initial state), and with `keep` the states at every multiple of `keep` on the way
        (checkpoints, {step: state}), `start`'s included."""
        state = self.start if state is None else state
        stop = len(self.steps) if stop is None else stop
        kept = {}
        for s in range(start, stop):
            if keep is not None and s % keep == 0:
                kept[s] = state
            state = self.step(state, w, s)
        return state, kept

    def backward_step(self, state: State, w: torch.Tensor, s: int,
                      adjoint: State) -> tuple[State, torch.Tensor]:
        """The cotangents of the state before step s, and of step s's batch weights float
        [T, B], from the cotangents `adjoint` of the state after it ([T, ...] per tensor: one per
        target). One vector-Jacobian product of the whole step (the loss's gradient, created
        differentiably, through weight decay, momentum and the update), batched over targets."""
        params, momenta, running = (None if part is None else
                                    tuple(t.detach().requires_grad_() for t in part)
                                    for part in (state.params, state.momenta, state.running))
        assert params is not None
        wb = w[self.steps[s].index].detach().requires_grad_()
        with self.stats.recording() as seen:
            loss = self._loss(params, wb, s)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        after = sgd_update(State(params, momenta), grads, self.steps[s].lr, self.recipe)
        outs, cots = list(after.params), list(adjoint.params)
        if after.momenta is not None and adjoint.momenta is not None:
            outs += after.momenta
            cots += adjoint.momenta
        if running is not None and adjoint.running is not None:
            outs += self.stats.updated(running, seen)
            cots += adjoint.running
        inputs = [*params, *(momenta or ()), *(running or ()), wb]
        back = torch.autograd.grad(outs, inputs, grad_outputs=cots, is_grads_batched=True,
                                   allow_unused=True)
        return before(back, params, momenta, running, adjoint), \
            zero_if_none(back[-1], wb.expand(len(cots[0]), -1))

    def module(self, state: State) -> nn.Module:
        """A module of the run's arch holding `state`'s parameters and running statistics, in
        eval mode."""
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            for p, value in zip(model.parameters(), state.params):
                p.copy_(value)
            BatchStats(model).load(state.running or ())
        return model.eval()


def train_weighted(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor,
                   labels: torch.Tensor, w: torch.Tensor, seed: int) -> nn.Module:
    """The model of the weighted run of seed `seed` with weights w float [N] on every image of x
    [N, ...] (labels int64 [N]), in eval mode: at w = 1 `train_one`'s model on all of x."""
    run = WeightedRun(build, recipe, x, labels, seed)
    final, _ = run.run(w.to(x.dtype))
    return run.module(final)


def same_order_trainer(engine: Any, seed: int) -> Callable[[torch.Tensor], nn.Module]:
    """The same-order LDS bank's models (MAGIC's single-model setting): for the training images
    `keep` int64 [K], the engine's run of `seed` on every image with the others weighted 0. The
    data order is drawn once and shared by every model."""
    from brittle.retrain.replayable import check_engine

    recipe = check_engine(engine, "eval=lds_same_order")
    run = WeightedRun(engine.build, recipe, engine.train_x, engine.train_y, seed)

    def train(keep: torch.Tensor) -> nn.Module:
        w = torch.zeros(engine.train_x.shape[0], dtype=engine.train_x.dtype,
                        device=engine.train_x.device)
        w[keep] = 1.0
        final, _ = run.run(w)
        return run.module(final)

    return train
