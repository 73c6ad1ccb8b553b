"""The reference code's transfer networks (brittle/retrain/reference_arches.py) against its
published structure: parameter counts by formula from the layer tables of models/mobilenetv2.py and
models/swin.py, the shifted-window mask against the reference's construction, and a few training
steps lowering the loss at CIFAR and digits sizes."""
from __future__ import annotations

import itertools

import pytest
import torch
from hydra.utils import instantiate

from brittle.retrain.reference_arches import (
    MobileNetV2CIFAR,
    SwinCIFAR,
    WindowAttention,
    shifted_window_mask,
)
from brittle.runtime.errors import BrittleError
from tests.helpers import make_cfg

# models/mobilenetv2.py's table: (expansion, out channels, blocks, first stride)
MOBILENETV2_TABLE = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                     (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenetv2_count(cin: int, classes: int) -> int:
    """Parameters of the reference MobileNetV2: conv weights, batch norm scale and shift, linear."""
    n, c = cin * 9 * 32 + 2 * 32, 32
    for expansion, out, blocks, stride in MOBILENETV2_TABLE:
        for i in range(blocks):
            h = expansion * c
            n += c * h + 2 * h + 9 * h + 2 * h + h * out + 2 * out   # expand, depthwise, project
            if (stride if i == 0 else 1) == 1 and c != out:
                n += c * out + 2 * out                               # 1x1-conv shortcut
            c = out
    return n + 320 * 1280 + 2 * 1280 + 1280 * classes + classes


def swin_count(cin: int, classes: int, size: int) -> int:
    """Trainable parameters of the reference Swin-T as create_model builds it (hidden 96, layers
    (2, 2, 6, 2), heads (3, 6, 12, 24) of width 32, window 4, downscaling (2, 2, 2, 1)); its
    shifted blocks' masks are frozen parameters and not counted."""
    n = 0
    for i, (layers, heads, factor) in enumerate(zip((2, 2, 6, 2), (3, 6, 12, 24), (2, 2, 2, 1))):
        dim, size = 96 * 2 ** i, size // factor
        window = min(4, size)
        n += cin * factor * factor * dim + dim                       # patch merging (linear)
        inner = heads * 32
        attention = dim * 3 * inner + (2 * window - 1) ** 2 + inner * dim + dim
        mlp = dim * 4 * dim + 4 * dim + 4 * dim * dim + dim
        n += layers * (2 * dim + attention + 2 * dim + mlp)          # two pre-norms per block
        cin = dim
    return n + 2 * cin + cin * classes + classes


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 8, 8)])
def test_parameter_counts_follow_the_published_structure(shape):
    assert _count(MobileNetV2CIFAR(shape, 10)) == mobilenetv2_count(shape[0], 10)
    assert _count(SwinCIFAR(shape, 10)) == swin_count(shape[0], 10, shape[1])


def test_parameter_counts_at_cifar_size_equal_the_reference_codes():
    # counted from the reference code's own modules: MobileNetV2(num_classes=10) and
    # swin_t(window_size=4, num_classes=10, downscaling_factors=(2, 2, 2, 1)), trainable parameters
    assert mobilenetv2_count(3, 10) == _count(MobileNetV2CIFAR((3, 32, 32), 10)) == 2_296_922
    assert swin_count(3, 10, 32) == _count(SwinCIFAR((3, 32, 32), 10)) == 26_598_646


def test_cifar_mobilenetv2_keeps_the_grid_to_4x4_and_has_conv_shortcuts_where_channels_change():
    net = MobileNetV2CIFAR((3, 32, 32), 10)
    # before pooling: a stride-1 stem and total stride 8
    features = torch.nn.Sequential(*list(net)[:-3])(torch.zeros(1, 3, 32, 32))
    assert features.shape == (1, 1280, 4, 4)
    convs = [b for b in net if isinstance(getattr(b, "shortcut", None), torch.nn.Sequential)]
    assert len(convs) == 4   # 32->16, 16->24, 64->96, 160->320: stride-1 blocks changing width


def reference_mask(size: int, window: int, shift: int) -> torch.Tensor:
    """The reference's masking of shifted windows: in the last row of windows, tokens of the last
    `shift` rows and the others never attend to each other; likewise columns in the last column."""
    n = size // window
    out = torch.zeros(n * n, window ** 2, window ** 2, dtype=torch.bool)
    for r, c in itertools.product(range(n), range(n)):
        for q, k in itertools.product(range(window ** 2), repeat=2):
            (qi, qj), (ki, kj) = divmod(q, window), divmod(k, window)
            split_rows = r == n - 1 and (qi >= window - shift) != (ki >= window - shift)
            split_cols = c == n - 1 and (qj >= window - shift) != (kj >= window - shift)
            out[r * n + c, q, k] = split_rows or split_cols
    return out


@pytest.mark.parametrize("size,window", [(16, 4), (8, 4), (4, 4), (2, 2)])
def test_shifted_window_mask_is_the_references(size, window):
    mask = shifted_window_mask(size, window, window // 2)
    assert torch.equal(torch.isinf(mask), reference_mask(size, window, window // 2))


def test_shifted_attention_keeps_wrapped_tokens_apart():
    """After the cyclic shift the bottom-right window holds tokens of both ends of the image; the
    mask keeps (0, 0) and (1, 1) from reaching (7, 7), while its neighbour (6, 6) still does."""
    torch.manual_seed(0)
    attention = WindowAttention(dim=8, heads=2, head_dim=4, window=4, shifted=True, size=8)
    x = torch.randn(1, 8, 8, 8, requires_grad=True)
    attention(x)[0, 7, 7].sum().backward()
    reach = x.grad[0].abs().sum(-1)                                  # [8, 8]
    assert reach[0, 0] == 0 and reach[1, 1] == 0 and reach[6, 6] > 0
    attention.mask.zero_()                       # without the mask the wrap-around leaks
    x.grad = None
    attention(x)[0, 7, 7].sum().backward()
    assert x.grad[0, 0, 0].abs().sum() > 0


def test_swin_refuses_images_its_patch_merging_cannot_tile():
    with pytest.raises(BrittleError, match=r"arch=swin_t_cifar cannot tile a 14x14 grid with 4x4 "
                                           r"windows; use images of side 8 x 2\^k"):
        SwinCIFAR((3, 28, 28), 10)
    with pytest.raises(BrittleError, match=r"cannot merge 2x2 patches of a 3x3 grid"):
        SwinCIFAR((3, 6, 6), 10)


@pytest.mark.parametrize("arch", ["mobilenetv2_cifar", "swin_t_cifar"])
@pytest.mark.parametrize("shape", [pytest.param((3, 32, 32), marks=pytest.mark.slow), (1, 8, 8)])
def test_a_few_training_steps_lower_the_loss(arch, shape):
    torch.manual_seed(0)
    net = instantiate(make_cfg([f"arch={arch}"]).arch.model, in_shape=list(shape), num_classes=10)
    x, y = torch.randn(16, *shape), torch.arange(16) % 10
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
