"""Pieces of a pretraining step written for a GPU's speed, each computing what the lightly piece
it replaces computes (tests/ssl/test_speed.py compares them):

- `ema_update`: lightly's `update_momentum` (momentum encoders) as two multi-tensor operations
  instead of two kernels a parameter;
- `HostPointerBank`: lightly's memory bank (MoCo's negatives from earlier batches) with its write
  position kept on the host: lightly reads it from the device each step (`int(self.bank_ptr)`),
  which makes the host wait for the GPU to finish the step's work;
- `bank_contrastive_loss`: the memory-bank branch of lightly's `NTXentLoss` as a pure function
  of its inputs, which torch.compile can make one graph;
- `compile_networks`: torch.compile of a method's networks and views (`backbone.compile`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.loss.memory_bank import MemoryBankModule
from torch import nn

from brittle.runtime.errors import BrittleError

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """target <- target * m + online * (1 - m), parameter by parameter (lightly's formula and
    rounding: the two products are rounded, then added)."""
    ema = [p.data for p in target.parameters()]
    current = [p.data for p in online.parameters()]
    torch._foreach_mul_(ema, m)
    torch._foreach_add_(ema, torch._foreach_mul(current, 1.0 - m))


class HostPointerBank(MemoryBankModule):
    """lightly's `MemoryBankModule` (same buffers and names, same enqueue: a batch that does not
    fit before the end fills the end, the rest is dropped and writing restarts at 0) whose write
    position is a host integer; the device copy `bank_ptr` follows it for checkpoints, and
    `sync_position` reads it back once after a resume."""

    def __init__(self, bank: MemoryBankModule):
        if bank.gather_distributed:
            raise BrittleError("HostPointerBank: gather_distributed memory banks are not supported")
        super().__init__(size=0, feature_dim_first=bank.feature_dim_first)
        self.size = bank.size
        self.bank, self.bank_ptr = bank.bank, bank.bank_ptr   # the same tensors, not copies
        self.position = 0

    def sync_position(self) -> None:
        """The host position from the device copy (after a checkpoint restored the buffers)."""
        self.position = int(self.bank_ptr[0]) if self.bank_ptr.numel() else 0

    @torch.no_grad()
    def _dequeue_and_enqueue(self, batch: torch.Tensor) -> None:
        size, ptr, n = int(self.size[0]), self.position, batch.shape[0]
        if ptr + n >= size:
            self.bank[ptr:] = batch[: size - ptr].detach()
            ptr = 0
        else:
            self.bank[ptr: ptr + n] = batch.detach()
            ptr += n
        self.position = ptr
        self.bank_ptr.fill_(ptr)


def bank_contrastive_loss(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor,
                          temperature: float) -> torch.Tensor:
    """NT-Xent of queries [B, D] against their keys [B, D] (already of unit length, as the bank
    holds them) and the bank's negatives [D, K]: lightly's NTXentLoss with a memory bank, the
    same operations in the same order."""
    query = F.normalize(query, dim=1)
    positive = torch.einsum("nc,nc->n", query, key).unsqueeze(-1)
    negative = torch.einsum("nc,ck->nk", query, negatives)
    logits = torch.cat([positive, negative], dim=1) / temperature
    labels = torch.zeros(logits.shape[0], device=logits.device, dtype=torch.long)
    return F.cross_entropy(logits, labels)


def bank_loss(criterion: NTXentLoss, contrast: Callable[..., torch.Tensor], query: torch.Tensor,
              key: torch.Tensor) -> torch.Tensor:
    """lightly's `criterion(query, key)` (NT-Xent; with a `HostPointerBank`: against its negatives,
    the keys then enqueued) computed by `contrast` (`bank_contrastive_loss`, maybe compiled)."""
    bank = criterion.memory_bank
    if not isinstance(bank, HostPointerBank):
        return criterion(query, key)   # no bank: in-batch negatives
    key = F.normalize(key, dim=1)
    _, negatives = bank(key, update=query.requires_grad)
    return contrast(query, key, negatives, criterion.temperature)


def compile_mode(value: Any) -> str | None:
    """`backbone.compile` as a torch.compile mode, or None (off): false | true | a mode name."""
    if value is None or value is False or str(value).lower() == "false":
        return None
    if value is True or str(value).lower() == "true":
        return "default"
    if str(value) in COMPILE_MODES:
        return str(value)
    raise BrittleError(f"backbone.compile={value} is not valid; use false, true or one of "
                       f"{', '.join(COMPILE_MODES)}")


# a child of a method that is not a network: losses keep state (queues, centres) updated by
# Python code, and the views are compiled apart (their random draws)
_NOT_COMPILED = ("criterion", "views")


def compile_networks(model: nn.Module, mode: str) -> None:
    """torch.compile, in place (state-dict names unchanged), of every network of `model` (its
    children with parameters: encoders, momentum encoders, heads) with static shapes, and of its
    device views (`model.views`), whose random draws stay torch's own (inductor's
    `fallback_random`), so compiled views equal eager ones draw for draw."""
    for name, child in model.named_children():
        if name not in _NOT_COMPILED and any(True for _ in child.parameters()):
            child.compile(mode=mode, dynamic=False)
    views = getattr(model, "views", None)
    if isinstance(views, nn.Module):
        views.compile(dynamic=False, options={"fallback_random": True})


def uncompile(model: nn.Module) -> None:
    """Back to eager calls for every module `compile_networks` compiled (the trained backbone
    leaves pretraining as a plain module)."""
    for module in model.modules():
        module._compiled_call_impl = None
