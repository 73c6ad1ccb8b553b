"""Fast supervised training of the retrained classifiers, with the data resident on the device.

The training images live on the device as one normalised float tensor `[N, C, H, W]`; a run
trains on a subset given by an index tensor and with (possibly overridden) labels, so removal and
mislabelling never copy images. Augmentation (flip, translate, cutout) is batched on the device.
The learning-rate schedule is the paper's: linear warm-up to the peak, then linear decay to 0.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brittle.retrain.loop import batches, seeded
from brittle.retrain.precision import Precision
from brittle.retrain.precision import step as precision_step
from brittle.runtime.errors import BrittleError


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_fraction: float = 5 / 24
    label_smoothing: float = 0.1
    flip: bool = False
    translate: int = 0
    cutout: int = 0
    nesterov: bool = False
    optimizer: str = "sgd"   # sgd (the paper's) | adamw (transformers and mixers train with it)
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16 (precision.py)
    # translation's padding per channel, in normalised units: None pads with 0 (the mean colour);
    # the paper preset gives black, as FFCV pads the uint8 image before normalising
    translate_fill: tuple[float, ...] | None = None
    cutout_inside: bool = False  # the square lies fully inside the image (FFCV) or is clipped at the border
    # progressive resizing: [[epoch, size], ...], training images resized to `size` px from `epoch`
    # on (the paper's ImageNet recipe: [[0, 160], [11, 192]]); None trains at the stored size
    resolution: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        # lists from the config: hashable and read-only
        if self.translate_fill is not None:
            object.__setattr__(self, "translate_fill", tuple(float(v) for v in self.translate_fill))
        if self.resolution is not None:
            pairs = tuple((int(e), int(size)) for e, size in self.resolution)
            if not pairs or pairs[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(pairs, pairs[1:])):
                raise BrittleError(f"trainer.recipe.resolution={[list(p) for p in pairs]} is not valid; give "
                                   f"[[0, size], [epoch, size], ...] with increasing epochs")
            object.__setattr__(self, "resolution", pairs)


def resized(x: torch.Tensor, recipe: Recipe, epoch: int) -> torch.Tensor:
    """x [B, C, H, W] at the training resolution of `epoch` (bilinear, antialiased), or as is."""
    if recipe.resolution is None:
        return x
    size = [s for e, s in recipe.resolution if e <= epoch][-1]
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def augment(x: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip, translation by up to `translate` px (padded with `translate_fill`,
    0 by default) and a `cutout` x `cutout` zeroed square (centred anywhere, clipped at the border,
    or with `cutout_inside` placed fully inside), independently per image of x [B, C, H, W]."""
    b, _, h, w = x.shape
    dev = x.device
    if recipe.flip:
        flip = torch.rand(b, generator=gen, device=dev) < 0.5
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    if recipe.translate > 0:
        x = translate(x, recipe.translate, gen, fill=recipe.translate_fill)
    if recipe.cutout > 0:
        s = recipe.cutout
        if recipe.cutout_inside:
            y0 = torch.randint(0, h - s + 1, (b,), generator=gen, device=dev).view(b, 1, 1)
            x0 = torch.randint(0, w - s + 1, (b,), generator=gen, device=dev).view(b, 1, 1)
        else:
            y0 = torch.randint(0, h, (b,), generator=gen, device=dev).view(b, 1, 1) - s // 2
            x0 = torch.randint(0, w, (b,), generator=gen, device=dev).view(b, 1, 1) - s // 2
        yy = torch.arange(h, device=dev).view(1, h, 1)
        xx = torch.arange(w, device=dev).view(1, 1, w)
        hole = (yy >= y0) & (yy < y0 + s) & (xx >= x0) & (xx < x0 + s)
        x = x.masked_fill(hole.unsqueeze(1), 0.0)
    return x


def translate(x: torch.Tensor, pad: int, gen: torch.Generator, mode: str = "constant",
              fill: tuple[float, ...] | None = None) -> torch.Tensor:
    """Each image of x [B, C, H, W] shifted by up to `pad` px in each direction; the uncovered
    border is zero, `fill` [C] per channel (mode "constant"), or mirrored ("reflect")."""
    b, c, h, w = x.shape
    if fill is not None and mode == "constant":
        if len(fill) != c:
            raise BrittleError(f"trainer.recipe.translate_fill has {len(fill)} values for {c}-channel images; "
                               f"give one per channel")
        level = torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        padded = F.pad(x - level, (pad,) * 4) + level   # pad with 0 around x - fill: fill around x
    else:
        padded = F.pad(x, (pad,) * 4, mode=mode)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    return padded.gather(2, rows.expand(b, c, h, w + 2 * pad)).gather(3, cols.expand(b, c, h, w))


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    warm = max(1, int(round(recipe.warmup_fraction * total)))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return recipe.lr * max(0.0, (total - step) / max(1, total - warm))


def optimizer_for(params: Iterable[torch.Tensor], recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    raise BrittleError(f"recipe optimizer={recipe.optimizer} is not valid; use sgd or adamw")


def train_model(build: Callable[[], nn.Module], recipe: Recipe, x: torch.Tensor, labels: torch.Tensor,
                keep: torch.Tensor, seed: int) -> nn.Module:
    """Train one model from scratch on x[keep] with labels[keep]. Deterministic per seed on CPU
    (brittle/retrain/loop.py: init, data order, augmentation and dropout follow the seed).

    x: float [N, C, H, W] on the device; labels: int64 [N]; keep: int64 [N_keep] indices.
    """
    device = x.device
    with seeded(seed, device) as gen:
        model = build().to(device)
        _train_loop(model, recipe, x, labels, keep, gen)
    return model.eval()


def _train_loop(model: nn.Module, recipe: Recipe, x: torch.Tensor, labels: torch.Tensor,
                keep: torch.Tensor, gen: torch.Generator) -> None:
    opt = optimizer_for(model.parameters(), recipe)
    precision = Precision.of(recipe.precision, x.device)
    scaler = precision.scaler()
    if x.device.type == "cuda" and x.dim() == 4:
        model.to(memory_format=torch.channels_last)  # the tensor-core layout of convolutions
    model.train()
    for step in batches(int(keep.shape[0]), recipe.batch_size, recipe.epochs, [gen]):
        idx = keep[step.positions[0]]
        xb = augment(resized(x[idx], recipe, step.epoch), recipe, gen)
        if x.device.type == "cuda" and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = lr_at(step.step, step.total, recipe)
        with precision.autocast():
            loss = F.cross_entropy(model(xb), labels[idx], label_smoothing=recipe.label_smoothing)
        precision_step(loss, opt, scaler)


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024, precision: str = "auto") -> torch.Tensor:
    """float32 [M, num_classes] logits of x [M, C, H, W] in eval mode, in the recipe's precision."""
    policy = Precision.of(precision, x.device)
    out = []
    for start in range(0, x.shape[0], batch_size):
        with policy.autocast():
            out.append(model(x[start:start + batch_size]).float())
    return torch.cat(out)


def margin(logit: torch.Tensor, label: int) -> float:
    """Correct-class logit minus the highest other logit, for one logit vector [C]."""
    other = logit.clone()
    other[label] = -float("inf")
    return float(logit[label] - other.max())
