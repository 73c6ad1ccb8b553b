"""The pretraining step's speed levers compute what they replace: split batch norm in any layout
against lightly's, the foreach EMA against lightly's update_momentum, the host-pointer memory bank
and contrastive loss against lightly's NTXentLoss, the fused colour jitter against torchvision
applied image by image, and a whole MoCo step reads nothing back from the device."""
from __future__ import annotations

import copy

import pytest
import torch
import torchvision.transforms.functional as TF
from torch.utils._python_dispatch import TorchDispatchMode

from brittle.runtime.errors import BrittleError
from brittle.ssl.color import color_jitter
from brittle.ssl.methods import MoCo
from brittle.ssl.networks import SplitBatchNorm, lightly_resnet, small_cnn
from brittle.ssl.speed import HostPointerBank, compile_mode, ema_update
from brittle.ssl.views import DeviceViews, view_specs

CL = torch.channels_last


def test_split_batch_norm_keeps_the_layout_and_equals_lightlys():
    """A channels-last batch: lightly's numbers (output, gradients, running statistics, and the
    evaluation that follows), the layout kept; a contiguous batch takes lightly's own path."""
    from lightly.models.batchnorm import SplitBatchNorm as Lightly
    torch.manual_seed(0)
    ref, ours = Lightly(6, 4), SplitBatchNorm(6, 4)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-1, 1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(16, 6, 5, 5) * 3 + 1
    xr, xo = x.clone().requires_grad_(), x.contiguous(memory_format=CL).requires_grad_()
    yr, yo = ref(xr), ours(xo)
    assert yo.is_contiguous(memory_format=CL) and not yo.is_contiguous()
    torch.testing.assert_close(yo, yr, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(yr)
    (yr * grad).sum().backward()
    (yo * grad).sum().backward()
    pairs = ((xo.grad, xr.grad), (ours.weight.grad, ref.weight.grad),
             (ours.bias.grad, ref.bias.grad),
             (ours.running_mean, ref.running_mean), (ours.running_var, ref.running_var))
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    ref.eval(), ours.eval()
    torch.testing.assert_close(ours(x.contiguous(memory_format=CL)), ref(x), rtol=1e-5, atol=1e-5)
    ours.train()
    torch.testing.assert_close(ours(x), ref.train()(x), rtol=0, atol=0)   # lightly's path
    # bf16 in (autocast), bf16 out, statistics in float32
    assert ours(x.bfloat16().contiguous(memory_format=CL)).dtype == torch.bfloat16


def _moco_steps(model: MoCo, views: list[torch.Tensor], steps: int = 2) -> list[float]:
    optim = torch.optim.SGD(model.trainable(), lr=0.06, momentum=0.9)
    torch.manual_seed(1)   # the same batch shuffles of the key encoder
    losses = []
    for step in range(steps):
        batch = model.on_after_batch_transfer((views, torch.zeros(len(views[0]))), 0)
        loss = model.training_step(batch, step)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return losses


def test_the_papers_resnet_trains_the_same_channels_last():
    """lightly's ResNet-18 with split batch norm (the paper's backbone, at a quarter of its width):
    channels-last (brittle's split batch norm) trains as the contiguous layout (lightly's). In
    float64: with 2 images a split at 16 px the deepest statistics come from 8 values, where
    float32 rounding alone moves some gradients by a percent."""
    from brittle.ssl.fit import _set_memory_format
    torch.manual_seed(0)
    views = [torch.randn(8, 3, 16, 16, dtype=torch.float64) for _ in range(2)]
    net = lightly_resnet(num_splits=4, width=0.25)
    base = MoCo(net, max_epochs=1, batch_size=8, memory_bank=16).double()
    runs = {}
    for name in ("contiguous", "channels_last"):
        model = copy.deepcopy(base)
        _set_memory_format(model, name)
        runs[name] = (_moco_steps(model, views), model)
    (last, last_model), (plain, plain_model) = runs["channels_last"], runs["contiguous"]
    torch.testing.assert_close(last, plain, rtol=1e-10, atol=1e-12)
    conv = last_model.backbone[0].weight
    assert conv.is_contiguous(memory_format=CL) and not conv.is_contiguous()
    for a, b in zip(last_model.state_dict().values(), plain_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_ema_update_equals_lightlys_update_momentum():
    """The same formula (both products rounded, then added): equal to a unit of rounding."""
    from lightly.models.utils import update_momentum
    torch.manual_seed(0)
    online, target = small_cnn(3, 4), small_cnn(3, 4)
    reference = copy.deepcopy(target)
    ema_update(online, target, 0.99)
    update_momentum(online, reference, 0.99)
    for a, b in zip(target.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=2e-7, atol=1e-9)


def test_host_pointer_bank_and_loss_equal_lightlys_ntxent():
    """Five steps of lightly's NTXentLoss with a memory bank of 10 and batches of 4 (the bank
    wraps, dropping what does not fit) against brittle's: the same losses and bank, exactly."""
    from lightly.loss import NTXentLoss

    from brittle.ssl.speed import bank_contrastive_loss, bank_loss
    torch.manual_seed(0)
    theirs = NTXentLoss(temperature=0.1, memory_bank_size=(10, 5))
    ours = copy.deepcopy(theirs)
    ours.memory_bank = HostPointerBank(ours.memory_bank)
    for _ in range(5):
        q, k = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5)
        expected = theirs(q, k)
        got = bank_loss(ours, bank_contrastive_loss, q, k)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        torch.testing.assert_close(ours.memory_bank.bank, theirs.memory_bank.bank, rtol=0, atol=0)
        position = ours.memory_bank.position
        assert int(ours.memory_bank.bank_ptr) == int(theirs.memory_bank.bank_ptr) == position
    ours.memory_bank.position = 99
    ours.memory_bank.sync_position()   # after a resume restored the buffers
    assert ours.memory_bank.position == int(theirs.memory_bank.bank_ptr)


def test_fused_colour_jitter_equals_torchvision_image_by_image():
    """The same draws (factors, order, coin: drawn in this order) applied by torchvision's
    functional ops to one PIL image at a time, in each image's order, as lightly's DataLoader path
    does: random uint8 pixels (every hue and saturation, grey pixels among them), levels equal."""
    import numpy as np
    from PIL import Image
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 6, 6), dtype=torch.uint8)
    x[:4, 1:] = x[:4, :1]   # some grey pixels, whose hue Pillow leaves at 0
    strengths, p = (0.4, 0.4, 0.4, 0.1), 0.8
    torch.manual_seed(3)
    got = color_jitter(x.float(), strengths, p)
    torch.manual_seed(3)
    factors = [torch.empty(64).uniform_(1 - v, 1 + v) for v in strengths[:3]]
    shift = torch.empty(64).uniform_(-strengths[3], strengths[3])
    order = torch.argsort(torch.rand(64, 4), dim=1)
    jittered = torch.rand(64) < p
    ops = (lambda y, i: TF.adjust_brightness(y, float(factors[0][i])),
           lambda y, i: TF.adjust_contrast(y, float(factors[1][i])),
           lambda y, i: TF.adjust_saturation(y, float(factors[2][i])),
           lambda y, i: TF.adjust_hue(y, float(shift[i])))
    for i in range(64):
        expected = Image.fromarray(x[i].permute(1, 2, 0).numpy())
        for k in order[i].tolist() if jittered[i] else []:
            expected = ops[k](expected, i)
        np.testing.assert_array_equal(got[i].permute(1, 2, 0).numpy(), np.asarray(expected))
    assert jittered.any() and not jittered.all()


_READS_BACK = {"aten._local_scalar_dense.default", "aten.nonzero.default",
               "aten.lift_fresh.default", "aten.masked_select.default", "aten.unique.default",
               "aten._unique2.default"}


class _DeviceReads(TorchDispatchMode):
    """Operations that make the host wait for the device on a GPU: reading a value (`int`,
    `float`, `.item()`), shapes that depend on values (`nonzero`), tensors made from Python data."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in _READS_BACK:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def test_a_moco_step_reads_nothing_back_from_the_device():
    """Views made on the device, MoCo's step (bank included), backward and optimiser step: no
    operation that would synchronise the host with a GPU."""
    transform = {"_target_": "lightly.transforms.SimCLRTransform", "input_size": 16,
                 "cj_strength": 0.5, "gaussian_blur": 0.5,
                 "normalize": {"mean": [0.5] * 3, "std": [0.25] * 3}}
    model = MoCo(small_cnn(3, 4), max_epochs=1, batch_size=16, memory_bank=40)
    model.views = DeviceViews(view_specs(transform), 3)
    optim = torch.optim.SGD(model.trainable(), lr=0.06, momentum=0.9)
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    reads = _DeviceReads()
    for step in range(3):   # the bank wraps at the third step
        with reads:
            batch = model.on_after_batch_transfer((images, torch.zeros(16)), 0)
            loss = model.training_step(batch, step)
            optim.zero_grad()
            loss.backward()
            optim.step()
    assert reads.seen == []
    # the detector itself sees what it looks for
    with reads:
        int(loss.detach())
    assert reads.seen == ["aten._local_scalar_dense.default"]


def test_backbone_compile_values():
    values = (False, None, "false", True, "true", "max-autotune")
    expected = [None, None, None, "default", "default", "max-autotune"]
    assert [compile_mode(v) for v in values] == expected
    with pytest.raises(BrittleError, match="backbone.compile=fast is not valid; use false, true"):
        compile_mode("fast")


def test_backbone_compile_compiles_the_networks_views_and_loss(monkeypatch):
    """backbone.compile=true: torch.compile (static shapes) of the encoders, heads, views (with
    torch's own random draws) and MoCo's loss; the trained backbone leaves as a plain module."""
    from brittle.api import load_data
    from brittle.ssl.fit import fit_backbone
    from tests.helpers import make_cfg
    calls: list[tuple] = []

    def recording(fn, **kwargs):
        calls.append((getattr(fn, "__self__", fn).__class__.__name__, kwargs))
        return fn
    monkeypatch.setattr(torch, "compile", recording)
    cfg = make_cfg(["dataset.train_subset=60", "backbone.epochs=1", "backbone.batch_size=32",
                    "backbone.knn_every=0", "backbone.compile=true"])
    fit = fit_backbone(cfg.backbone, cfg.dataset.ssl_transform, cfg.dataset.normalize,
                       load_data(cfg).train, 0, torch.device("cpu"), False)
    compiled = sorted(name for name, _ in calls)
    networks = ["Sequential", "Sequential", "MoCoProjectionHead", "MoCoProjectionHead"]
    assert compiled == sorted([*networks, "DeviceViews", "function"])
    assert all(kw.get("dynamic") is False for _, kw in calls)
    assert [kw for name, kw in calls if name == "DeviceViews"] == \
        [{"dynamic": False, "options": {"fallback_random": True}}]
    assert all(m._compiled_call_impl is None for m in fit.net.modules())


@pytest.mark.slow
def test_compiled_moco_step_equals_eager():
    """torch.compile of the networks, views and loss (static shapes) gives the eager losses and
    weights on the same batches and seed, to float rounding (a minute or two of compiling)."""
    transform = {"_target_": "lightly.transforms.SimCLRTransform", "input_size": 8,
                 "cj_strength": 0.5, "gaussian_blur": 0.0}
    torch.manual_seed(0)
    base = MoCo(small_cnn(3, 4), max_epochs=1, batch_size=16, memory_bank=32)
    base.views = DeviceViews(view_specs(transform), 3)
    images = [torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8) for _ in range(3)]
    runs = {}
    for compiled in (False, True):
        model = copy.deepcopy(base)
        if compiled:
            model.compile_for_training("default")
        optim = torch.optim.SGD(model.trainable(), lr=0.06, momentum=0.9)
        torch.manual_seed(1)
        losses = []
        for step, x in enumerate(images):
            loss = model.training_step(model.on_after_batch_transfer((x, torch.zeros(16)), 0), step)
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
        runs[compiled] = (losses, model)
    torch.testing.assert_close(runs[True][0], runs[False][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(runs[True][1].parameters(), runs[False][1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_computes_the_fp32_loss_to_its_rounding():
    """backbone.precision=bf16: Lightning's autocast trains (no gradient scaler), and one
    MoCo step's loss under bf16 autocast is the fp32 loss to bf16's 8-bit mantissa."""
    from brittle.api import load_data
    from brittle.ssl.fit import fit_backbone
    from tests.helpers import make_cfg
    torch.manual_seed(0)
    model = MoCo(small_cnn(1, 8), max_epochs=1, batch_size=32, memory_bank=64)
    views = [torch.randn(32, 1, 8, 8), torch.randn(32, 1, 8, 8)]
    losses = []
    for dtype in (None, torch.bfloat16):
        torch.manual_seed(1)
        step = copy.deepcopy(model)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            losses.append(step.training_step((views, torch.zeros(32)), 0).item())
    assert losses[1] == pytest.approx(losses[0], rel=2e-2) and losses[1] != losses[0]
    cfg = make_cfg(["dataset.train_subset=60", "backbone.epochs=1", "backbone.batch_size=32",
                    "backbone.knn_every=0", "backbone.precision=bf16"])
    fit = fit_backbone(cfg.backbone, cfg.dataset.ssl_transform, cfg.dataset.normalize,
                       load_data(cfg).train, 0, torch.device("cpu"), False)
    assert len(fit.losses) == 1 and fit.losses[0] > 0
