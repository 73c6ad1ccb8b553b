"""Numeric precision, one vocabulary for every training brittle runs: `auto | fp32 | bf16 | fp16`.

A recipe's precision (`trainer.recipe.precision`) holds for its training and read-out on every
path that trains with it (one model at a time, or N stacked MLPs), so the models of one
counterfactual test (and a resumed test's missing replicate) train alike whichever path trains
them. `auto` is bf16 autocast on CUDA and fp32 on a CPU; `fp16` adds a gradient scaler (the
paper's reference code trains in fp16 with one); `bf16` and `fp32` can be asked for on either
device. The backbone's pretraining (`backbone.precision`) takes the same names, handed to
Lightning as its own (`lightning_precision`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from brittle.runtime.errors import BrittleError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """A resolved precision: `name` is fp32, bf16 or fp16, on `device`."""
    name: str
    device: torch.device

    @classmethod
    def of(cls, name: str, device: torch.device) -> Precision:
        if name not in PRECISIONS:
            raise BrittleError(f"recipe precision={name} is not valid; use one of "
                               f"{list(PRECISIONS)}")
        if name == "auto":
            name = "bf16" if device.type == "cuda" else "fp32"
        if name == "fp16" and device.type != "cuda":
            raise BrittleError("trainer.recipe.precision=fp16 needs a CUDA device; on a CPU use "
                               "trainer.recipe.precision=fp32 (or bf16)")
        return cls(name, device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for the forward pass (a no-op context in fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.name])

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler: active in fp16 only (bf16 has fp32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


# brittle's names -> Lightning's Trainer(precision=...) for SSL pretraining (fp16 is Lightning's
# 16-mixed: autocast with a gradient scaler)
_LIGHTNING = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}


def lightning_precision(name: str, device: torch.device) -> Any:
    """`backbone.precision` as Lightning names it; `auto` as for a recipe (bf16 on CUDA)."""
    if name not in PRECISIONS:
        raise BrittleError(f"backbone.precision={name} is not valid; use one of "
                           f"{list(PRECISIONS)}")
    if name == "auto":
        name = "bf16" if device.type == "cuda" else "fp32"
    return _LIGHTNING[name]


def step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Backward and optimizer step of one batch (scaled in fp16, plain otherwise)."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
