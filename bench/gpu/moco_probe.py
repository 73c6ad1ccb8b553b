"""Step-throughput probe of MoCo pretraining (bench/gpu_check.py calls it): images a second of
one MoCo v2 training step (views made on the device, both directions of the loss, backward, SGD,
momentum update) of lightly's ResNet-18 with split batch norm, on random images, with the
levers of `backbone.*` as arguments; and the fraction of the card's bf16 rate that is, from the
step's FLOPs counted by torch.utils.flop_counter on the very modules that train.

    from bench.gpu.moco_probe import moco_step_probe
    moco_step_probe(512, precision="bf16", memory_format="channels_last", compile=False)
"""
from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from brittle.ssl.fit import _set_memory_format
from brittle.ssl.methods import MoCo
from brittle.ssl.networks import lightly_resnet
from brittle.ssl.speed import compile_mode
from brittle.ssl.views import DeviceViews, view_specs

# Dense bf16 tensor-core rates (NVIDIA's data sheets, SXM parts unless named), by a substring of
# torch.cuda.get_device_name(); the first match counts, so "H100 PCIe" precedes "H100".
PEAK_BF16_FLOPS = (("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12),
                   ("A100", 312e12), ("L40S", 362e12))
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def peak_bf16_flops(device_name: str) -> float | None:
    """The card's dense bf16 rate in FLOP/s, or None for a card not in the table."""
    return next((rate for key, rate in PEAK_BF16_FLOPS if key in device_name), None)


def fraction_of_peak(images_per_second: float, flops_per_image: float,
                     peak: float | None) -> float | None:
    """The share of `peak` FLOP/s that images_per_second x flops_per_image is."""
    return None if not peak else images_per_second * flops_per_image / peak


def build_moco(batch: int, device: torch.device, memory_format: str = "channels_last",
               transform: dict | None = None, num_splits: int = 8, width: float = 1.0,
               memory_bank: int = 4096) -> MoCo:
    """The paper's MoCo (lightly's ResNet-18, split batch norm) on `device`; with `transform` (a
    lightly view transform's config), views are made on the device from uint8 images."""
    model = MoCo(lightly_resnet(num_splits=num_splits, width=width), max_epochs=1, batch_size=batch,
                 memory_bank=memory_bank)
    if transform is not None:
        model.views = DeviceViews(view_specs(transform), 3)
    _set_memory_format(model, memory_format)
    return model.to(device)


def _inputs(model: MoCo, batch: int, size: int, device: torch.device) -> tuple[Any, torch.Tensor]:
    """A batch as the DataLoader hands it: uint8 images [B, 3, s, s] (device views) or two
    float views [B, 3, s, s]."""
    if model.views is not None:
        return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device), \
            torch.zeros(batch, device=device)
    return [torch.randn(batch, 3, size, size, device=device) for _ in range(2)], torch.zeros(batch)


def step_fn(model: MoCo, optim: torch.optim.Optimizer, precision: str, inputs: Any):
    """One training step as Lightning runs it: views, the loss under autocast (bf16,
    fp16 with a gradient scaler, or none), backward, optimiser step."""
    dtype = _AUTOCAST.get(precision)
    device = next(model.parameters()).device
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def step(i: int) -> torch.Tensor:
        batch = model.on_after_batch_transfer(inputs, 0)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = model.training_step(batch, i)
        optim.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()
        else:
            loss.backward()
            optim.step()
        model._running.clear()
        return loss
    return step


def step_flops_per_image(model: MoCo, inputs: Any) -> float:
    """FLOPs of one training step's forward and backward passes (both directions, query and key
    encoders, loss) per image, counted by torch.utils.flop_counter (2 per multiply-add)."""
    batch = model.on_after_batch_transfer(inputs, 0)
    with FlopCounterMode(display=False) as counter:
        model.training_step(batch, 0).backward()
    model.zero_grad(set_to_none=True)
    model._running.clear()
    return counter.get_total_flops() / len(batch[0][0])


def moco_step_probe(batch: int = 512, precision: str = "bf16",
                    memory_format: str = "channels_last", compile: Any = False,
                    transform: dict | None = None, image_size: int = 32, steps: int = 20,
                    warmup: int = 5, device: str | None = None,
                    num_splits: int = 8, width: float = 1.0, memory_bank: int = 4096) -> dict:
    """Images a second of MoCo steps on random data (after `warmup` untimed steps), FLOPs an
    image, the fraction of the card's bf16 rate, and (on CUDA) the host synchronisations one step
    makes (torch.cuda's sync debug mode)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    model = build_moco(batch, dev, memory_format, transform, num_splits, width, memory_bank)
    inputs = _inputs(model, batch, image_size, dev)
    flops = step_flops_per_image(model, inputs)
    mode = compile_mode(compile)
    if mode is not None:
        model.compile_for_training(mode)
    optim = model.configure_optimizers()[0][0]
    step = step_fn(model, optim, precision, inputs)
    for i in range(warmup):
        step(i)
    syncs = _count_syncs(step) if dev.type == "cuda" else None
    _synchronize(dev)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    _synchronize(dev)
    seconds = (time.perf_counter() - start) / steps
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    rate = batch / seconds
    return {"device": name, "batch": batch, "precision": precision, "memory_format": memory_format,
            "compile": mode or "off", "views_on_device": transform is not None,
            "images_per_second": rate, "seconds_per_step": seconds, "flops_per_image": flops,
            "fraction_of_bf16_peak": fraction_of_peak(rate, flops, peak_bf16_flops(name)),
            "host_syncs_per_step": syncs}


def _count_syncs(step) -> int:
    """Synchronising CUDA calls of one step (torch warns once for each in "warn" mode)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(-1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
