"""The MoCo step probe: its FLOP count against the layers' own arithmetic, the fraction of a
card's bf16 rate, and the probe itself at a toy size on a CPU (every precision it offers)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.gpu import moco_probe as probe


def _forward_flops(module: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(all, first convolution's) multiply-adds x 2 per image of one forward pass, from each
    Conv2d's and Linear's shapes (hooks), independently of torch.utils.flop_counter."""
    counts: list[float] = []

    def conv(m, _, out):
        per_output = 2 * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        counts.append(per_output * out[0].numel())

    def linear(m, _, out):
        counts.append(2 * m.in_features * m.out_features)
    hooks = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module(x)
    for h in hooks:
        h.remove()
    return sum(counts), counts[0]


def test_step_flops_are_the_layers_arithmetic():
    """Per image: the query encoder forward and backward on both views (3x forward, less the
    first convolution's gradient for its input image, which is not computed), the key encoder
    forward on both views, and the loss's query x bank products (forward and backward, both
    directions): 8 F - 2 F_first + 8 D K."""
    torch.manual_seed(0)
    model = probe.build_moco(8, torch.device("cpu"), "contiguous", None, num_splits=2, width=0.25,
                       memory_bank=64)
    x = torch.randn(1, 3, 16, 16)
    encoder = nn.Sequential(model.backbone, nn.Flatten(), model.projection_head).eval()
    forward, first = _forward_flops(encoder, x)
    inputs = ([torch.randn(8, 3, 16, 16) for _ in range(2)], torch.zeros(8))
    model.train()
    counted = probe.step_flops_per_image(model, inputs)
    expected = 8 * forward - 2 * first + 8 * 128 * 64
    assert counted == pytest.approx(expected, rel=1e-3)


def test_fraction_of_a_cards_bf16_rate():
    assert probe.peak_bf16_flops("NVIDIA H200") == 989e12
    assert probe.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert probe.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert probe.peak_bf16_flops("cpu") is None
    assert probe.fraction_of_peak(10_000, 9e9, 989e12) == pytest.approx(9e13 / 989e12)
    assert probe.fraction_of_peak(10_000, 9e9, None) is None


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_probe_runs_a_toy_step(precision):
    transform = {"_target_": "lightly.transforms.SimCLRTransform", "input_size": 8,
                 "cj_strength": 0.5, "gaussian_blur": 0.0}
    out = probe.moco_step_probe(4, precision=precision, transform=transform, image_size=8, steps=1,
                          warmup=1, device="cpu", num_splits=2, width=0.125, memory_bank=8)
    assert out["images_per_second"] > 0 and out["flops_per_image"] > 0
    assert out["precision"] == precision and out["views_on_device"] and out["compile"] == "off"
    assert out["fraction_of_bf16_peak"] is None and out["host_syncs_per_step"] is None
