"""`trainer=fast`: an airbench-class procedure (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds on
a single GPU"), re-implemented here; its network is `arch=airnet` (airnet.py).

What makes it fast, each part configurable: a frozen 2x2 patch-whitening first convolution
initialised from the training images' patch covariance; a small VGG-like net (widths 64/256/256,
GELU, BatchNorm with frozen scale); Nesterov SGD with decoupled hyperparameters (lr and weight
decay per 1024 examples; BatchNorm biases at 64x the lr); label smoothing 0.2; a triangular lr
schedule over 9.9 epochs of batch 1024; alternating flips (a random half flipped once, then
every image flipped on odd epochs) and reflect-padded 2 px translation; a lookahead EMA of the
weights from epoch 3; flip + translate test-time augmentation. Several models train at once
with `together` (streams | vmap, brittle/retrain/together.py) exactly as the recipe trainer's.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from brittle.retrain.airnet import AirNet
from brittle.retrain.augment import translate
from brittle.retrain.loop import Autocast, Fit, Pending, batches
from brittle.retrain.together import StepTrainer

_TOGETHER = ("loop", "streams", "vmap")


class FastTrainer(StepTrainer):
    """The airbench-class training procedure; any arch works, AirNet gets its whitening init.
    together: loop (one by one), streams or vmap (`concurrent` models at a time)."""

    def __init__(self, epochs: float = 9.9, batch_size: int = 1024, lr: float = 11.5,
                 momentum: float = 0.85, weight_decay: float = 0.0153, bias_scaler: float = 64.0,
                 label_smoothing: float = 0.2, whiten_bias_epochs: int = 3,
                 ema_start_epochs: int = 3, ema_decay_base: float = 0.95,
                 ema_decay_pow: float = 3.0, ema_every: int = 5, flip: bool = True,
                 translate: int = 2, tta_level: int = 2, whiten_images: int = 5000,
                 name: str = "fast", together: str = "loop", concurrent: int = 8):
        self.name = name  # display name in tables
        self._set_together(together, concurrent, _TOGETHER)
        self.epochs, self.batch_size = float(epochs), int(batch_size)
        self.momentum = float(momentum)
        # decoupled form: lr and weight decay per 1024 examples, independent of the momentum
        kilostep = 1024 * (1 + 1 / (1 - momentum))
        self.lr = lr / kilostep
        self.decay = weight_decay * batch_size / kilostep
        self.bias_scaler, self.label_smoothing = float(bias_scaler), float(label_smoothing)
        self.whiten_bias_epochs, self.whiten_images = int(whiten_bias_epochs), int(whiten_images)
        self.ema_start, self.ema_every = int(ema_start_epochs), int(ema_every)
        self.ema_base, self.ema_pow = float(ema_decay_base) ** ema_every, float(ema_decay_pow)
        self.flip, self.translate, self.tta_level = bool(flip), int(translate), int(tta_level)

    def _optimizer(self, model: nn.Module, fused: bool) -> torch.optim.SGD:
        norm_biases = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                       for p in m.parameters() if p.requires_grad]
        ids = {id(p) for p in norm_biases}
        others = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
        lr_bias = self.lr * self.bias_scaler
        groups = [dict(params=norm_biases, lr=lr_bias, weight_decay=self.decay / lr_bias,
                       base=lr_bias),
                  dict(params=others, lr=self.lr, weight_decay=self.decay / self.lr, base=self.lr)]
        return torch.optim.SGD(groups, momentum=self.momentum, nesterov=True, fused=fused or None)

    def autocast(self, device: torch.device) -> Autocast:
        if device.type == "cuda":
            return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext

    def fit(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor,
            gen: torch.Generator) -> Fit:
        """The procedure on x[keep] as a Fit (loop.py); the seed's generator `gen` draws the
        alternating flips, data order and translations."""
        if x.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        if isinstance(model, AirNet):
            # a random sample of the kept images, as airbench's first images of the official
            # (class-mixed) order are: a class-sorted dataset's first images are one class
            pick = torch.randperm(int(keep.shape[0]), generator=gen, device=x.device)
            model.init_whitening(x[keep[pick[:self.whiten_images]]])
        opt = self._optimizer(model, fused=x.device.type == "cuda")
        n = int(keep.shape[0])
        base_flip = torch.rand(n, generator=gen, device=x.device) < 0.5   # alternating flips
        ema: list[torch.Tensor] | None = None
        epoch = -1
        model.train()
        for step in batches(n, self.batch_size, self.epochs, [gen]):
            if step.epoch != epoch:   # a new epoch: close the last one, open this one
                if ema is not None:
                    _lookahead(model, ema, 1.0)
                epoch = step.epoch
                if isinstance(model, AirNet):
                    assert model.whiten.bias is not None
                    model.whiten.bias.requires_grad_(epoch < self.whiten_bias_epochs)
            p = step.positions[0]
            idx = keep[p]
            xb = self._augment(x[idx], base_flip[p] ^ (epoch % 2 == 1), gen)
            factor = _triangle(step.step, step.total)
            for group in opt.param_groups:
                group["lr"] = group["base"] * factor
            opt.zero_grad(set_to_none=True)
            yield Pending(xb, labels[idx], self._loss, _unscaled)
            opt.step()
            if epoch >= self.ema_start and (step.step + 1) % self.ema_every == 0:
                ema = _lookahead(model, ema,
                                 self.ema_base * ((step.step + 1) / step.total) ** self.ema_pow)
        if ema is not None:
            _lookahead(model, ema, 1.0)
        opt.zero_grad(set_to_none=True)   # the trained model keeps no gradients

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.float(), y, label_smoothing=self.label_smoothing,
                               reduction="sum")

    def _augment(self, xb: torch.Tensor, flip: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.flip:
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
        if self.translate > 0:
            xb = translate(xb, self.translate, gen, mode="reflect")
        return xb.contiguous(memory_format=torch.channels_last) if xb.is_cuda else xb

    @torch.no_grad()
    def logits(self, model: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """float32 [M, classes] with test-time augmentation (level 0 none, 1 mirror,
        2 mirror + 1 px translations)."""
        return torch.cat([self._tta(model, part) for part in x.split(batch_size)])

    def _tta(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        def run(v: torch.Tensor) -> torch.Tensor:
            with torch.autocast(v.device.type, dtype=torch.bfloat16, enabled=v.is_cuda):
                return model(v).float()

        def mirror(v: torch.Tensor) -> torch.Tensor:
            return 0.5 * (run(v) + run(v.flip(3))) if self.flip and self.tta_level >= 1 else run(v)

        out = mirror(x)
        if self.tta_level >= 2:
            h, w = x.shape[2:]
            padded = F.pad(x, (1,) * 4, mode="reflect")
            shifted = 0.5 * (mirror(padded[:, :, :h, :w]) + mirror(padded[:, :, 2:, 2:]))
            out = 0.5 * out + 0.5 * shifted
        return out


def _triangle(step: int, total: int, start: float = 0.2, peak: float = 0.23,
              end: float = 0.07) -> float:
    """lr factor: linear from `start` up to 1 at `peak` of training, then down to `end`."""
    top = max(1, int(peak * total))
    if step < top:
        return start + (1 - start) * step / top
    return 1 + (end - 1) * (step - top) / max(1, total - top)


def _unscaled(loss: torch.Tensor) -> torch.Tensor:
    return loss


@torch.no_grad()
def _lookahead(model: nn.Module, ema: list[torch.Tensor] | None,
               decay: float) -> list[torch.Tensor]:
    """Move the EMA of the float state towards the model by (1 - decay), then copy it back
    (two multi-tensor launches, not two per tensor)."""
    state = [v for v in model.state_dict().values() if v.is_floating_point()]
    if ema is None:
        return [v.clone() for v in state]
    torch._foreach_lerp_(ema, state, 1 - decay)
    torch._foreach_copy_(state, ema)
    return ema
