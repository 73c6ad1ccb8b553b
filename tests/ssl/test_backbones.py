"""Backbone family, pretrained checkpoints, and streamed image folders."""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from brittle.api import embed, load_data, pretrain, rank
from brittle.data.imagefolder import LazyImages, load_imagefolder
from brittle.runtime.cache import StageCache
from brittle.runtime.costs import Meter
from brittle.runtime.errors import BrittleError
from brittle.runtime.files import read_torch_file
from brittle.scorers.distance import Distance
from brittle.scorers.esvm.scorer import ExemplarSVM
from brittle.ssl.checkpoints import load_backbone_weights
from brittle.ssl.features import features_to
from tests.helpers import image_folder as _folder
from tests.helpers import make_cfg, run_brittle

SMALL = ["moco_small", "byol_small", "simclr_small", "dino_small", "supervised_small",
         # the reference code's other methods (lightly's CIFAR-10 benchmark set)
         "barlowtwins_small", "simsiam_small", "swav_small", "nnclr_small", "dcl_small",
         "dclw_small", "smog_small"]


@pytest.mark.parametrize("backbone", SMALL)
def test_every_method_pretrains_and_embeds(backbone, tmp_path):
    # SMoG re-clusters its groups every reset_every steps: 2 here, so its k-means reset runs too
    extra = ["backbone.method.reset_every=2", "backbone.method.n_groups=8",
             "backbone.method.memory_bank=64"] \
        if backbone == "smog_small" else []
    cfg = make_cfg([f"backbone={backbone}", "dataset.train_subset=300", "backbone.epochs=2",
                    "backbone.knn_every=1", "backbone.batch_size=64", *extra], cache_dir=tmp_path)
    data = load_data(cfg)
    out = pretrain(cfg, data)
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "epoch,loss,knn_accuracy" and len(curve) == 3
    assert all(np.isfinite(float(line.split(",")[1])) for line in curve[1:])
    assert 0.1 < StageCache.meta(out)["knn_accuracy"] <= 1.0
    emb = embed(cfg, data, out)
    assert emb.train.shape == (300, 128) and np.isfinite(np.asarray(emb.train)).all()


def test_imagefolder_embed_and_score(tmp_path):
    root = _folder(tmp_path / "tree", n_per_class=12)
    cfg = make_cfg(["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=16",
                    "backbone.epochs=1", "backbone.batch_size=16",
                    "backbone.memory_bank=64", "backbone.knn_every=0"], cache_dir=tmp_path / "c")
    data = load_data(cfg)
    assert isinstance(data.train.images, LazyImages) and data.train.images.shape == (36, 3, 16, 16)
    assert data.train.classes == ["ant", "bee", "cow"]
    emb = embed(cfg, data, pretrain(cfg, data))
    q = np.arange(len(data.test))
    for scorer in (ExemplarSVM(backend="torch"), Distance("l2")):
        topk = rank(scorer, np.asarray(emb.train), data.train.labels, np.asarray(emb.test),
                    data.test.labels, q, 5)
        assert topk.shape == (6, 5)
        assert all((data.train.labels[row] == data.test.labels[t]).all() for t,
                   row in enumerate(topk))


def test_imagefolder_errors(tmp_path):
    with pytest.raises(BrittleError, match="has no train/ and test/"):
        load_imagefolder(str(tmp_path))
    root = _folder(tmp_path / "t", 2)
    (root / "test" / "dog").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "test" / "dog" / "a.png")
    with pytest.raises(BrittleError, match="class folders differ"):
        load_imagefolder(str(root))


def test_embedding_memory_stays_flat_as_the_folder_grows(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    files = []
    img = np.zeros((128, 128, 3), np.uint8)
    img[::7] = 255
    for i in range(40):
        path = tmp_path / f"{i}.png"
        Image.fromarray(img).save(path)
        files.append(path)
    peaks = {}
    for n in (200, 1600):  # 1600 images = 300 MB as float32 if held at once
        images = LazyImages((files * 40)[:n], 128)
        with Meter(interval=0.002) as meter:
            features_to(tmp_path / f"f{n}.npy", net, images, [0.5] * 3, [0.5] * 3,
                        torch.device("cpu"), batch_size=50)
        peaks[n] = meter.peak_bytes
        assert np.load(tmp_path / f"f{n}.npy", mmap_mode="r").shape == (n, 8)
    assert peaks[1600] < peaks[200] + 40e6, peaks


def test_pretrained_torchvision_state_dict_and_release_checkpoints(tmp_path):
    from torchvision.models import resnet18
    plain = tmp_path / "r18.pth"
    torch.save(resnet18().state_dict(), plain)
    over = ["backbone=pretrained", "backbone.arch=resnet18", "backbone.resize=32",
            "dataset.train_subset=100", "dataset.test_subset=20"]
    cfg = make_cfg([*over, f"backbone.checkpoint={plain}"], cache_dir=tmp_path / "c")
    data = load_data(cfg)
    out = pretrain(cfg, data)
    emb = embed(cfg, data, out)
    assert emb.train.shape == (100, 512)
    # a MoCo v2 release: {'state_dict': {'module.encoder_q.<key>': ...,
    # 'module.encoder_q.fc.0.weight': ...}}
    sd = resnet18().state_dict()
    moco = {f"module.encoder_q.{k}": v for k, v in sd.items() if not k.startswith("fc.")}
    moco.update({"module.encoder_q.fc.0.weight": torch.zeros(2048, 512),
                 "module.encoder_k.conv1.weight": sd["conv1.weight"]})
    torch.save({"state_dict": moco, "epoch": 800, "arch": "resnet18"}, tmp_path / "moco.pth.tar")
    cfg2 = make_cfg([*over, f"backbone.checkpoint={tmp_path / 'moco.pth.tar'}"],
                    cache_dir=tmp_path / "c")
    assert (pretrain(cfg2, data) / "backbone.pt").exists()
    # DINO release: {'teacher': {'backbone.<key>': ..., 'head.mlp.0.weight': ...}}
    dino = {"teacher": {**{f"backbone.{k}": v for k, v in sd.items() if not k.startswith("fc.")},
                        "head.mlp.0.weight": torch.zeros(3, 3)}}
    torch.save(dino, tmp_path / "dino.pth")
    cfg3 = make_cfg([*over, f"backbone.checkpoint={tmp_path / 'dino.pth'}"],
                    cache_dir=tmp_path / "c")
    assert (pretrain(cfg3, data) / "backbone.pt").exists()
    # full training checkpoints: DINO's and MoCo v3's keep their arguments as an argparse.Namespace
    # and MoCo v3 its optimizer and gradient-scaler states
    args = argparse.Namespace(arch="resnet18", lr=0.3, epochs=100)
    v3 = {"state_dict": {**{f"module.base_encoder.{k}": v for k, v in sd.items()},
                         **{f"module.momentum_encoder.{k}": v for k, v in sd.items()}},
          "epoch": 100, "arch": "resnet18", "args": args,
          "optimizer": {"state": {}, "param_groups": [{"lr": 0.3, "params": [0, 1]}]},
          "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 0}}
    torch.save(v3, tmp_path / "mocov3.pth.tar")
    torch.save({**dino, "student": dino["teacher"], "args": args, "epoch": 100},
               tmp_path / "dino_full.pth")
    for name in ("mocov3.pth.tar", "dino_full.pth"):
        cfg4 = make_cfg([*over, f"backbone.checkpoint={tmp_path / name}"], cache_dir=tmp_path / "c")
        net = load_backbone_weights(instantiate(cfg4.backbone.net), pretrain(cfg4, data)
                                    / "backbone.pt")
        assert torch.equal(net.state_dict()["conv1.weight"], sd["conv1.weight"])


class _Payload:
    """Unpickling this runs code: it creates the file `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    from torchvision.models import resnet18
    made = tmp_path / "made-by-the-checkpoint"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": resnet18().state_dict(), "extra": _Payload(made)}, evil)
    over = ["backbone=pretrained", "backbone.arch=resnet18", "backbone.resize=32",
            f"backbone.checkpoint={evil}", "dataset.train_subset=100", "dataset.test_subset=20",
            "search.max_support=8",
            # the stages before pretraining as small as they go: the checkpoint is what is tested
            "reference.n_models=1", "arch.recipe.epochs=1", "targets.n=1",
            f"cache_dir={tmp_path / 'c'}", f"hydra.run.dir={tmp_path / 'run'}"]
    done = run_brittle(over)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert (done.returncode == 2 and len(errors) == 1
            and "Traceback" not in done.stderr), done.stderr[-2000:]
    assert f"backbone.checkpoint={evil} holds" in errors[0] and "pathlib" in errors[0]
    assert "backbone.trust_checkpoint=true" in errors[0]
    assert not made.exists()
    # the payload is real: the explicit opt-in unpickles it in full (and so runs it)
    read_torch_file(evil, "backbone.checkpoint", "a state dict", trust=True)
    assert made.exists()


def test_pretrained_checkpoint_that_does_not_fit(tmp_path):
    from torchvision.models import resnet50
    path = tmp_path / "r50.pth"
    torch.save(resnet50().state_dict(), path)
    cfg = make_cfg(["backbone=pretrained", "backbone.arch=resnet18", f"backbone.checkpoint={path}",
                    "dataset.train_subset=100"], cache_dir=tmp_path / "c")
    with pytest.raises(BrittleError, match=r"does not fit backbone ResNet: .*unexpected keys "
                                           r".*shape mismatches"):
        pretrain(cfg, load_data(cfg))
    assert not list((tmp_path / "c" / "pretrain").glob("[0-9a-f]*[0-9a-f]"))


def test_pretrained_timm_model(tmp_path):
    timm = pytest.importorskip("timm")
    path = tmp_path / "timm_r18.pth"
    torch.save(timm.create_model("resnet18", pretrained=False, num_classes=0).state_dict(), path)
    cfg = make_cfg(["backbone=pretrained", "backbone.source=timm", "backbone.arch=resnet18",
                    f"backbone.checkpoint={path}", "backbone.resize=32", "dataset.train_subset=50",
                    "dataset.test_subset=20"], cache_dir=tmp_path / "c")
    data = load_data(cfg)
    emb = embed(cfg, data, pretrain(cfg, data))
    assert emb.train.shape == (50, 512) and np.isfinite(np.asarray(emb.train)).all()
    with pytest.raises(BrittleError, match="backbone.arch=nosuchnet is not a timm model"):
        from brittle.ssl.networks import pretrained_net
        pretrained_net("nosuchnet", "timm")


def test_channels_last_trains_the_same_network():
    """backbone.memory_format=channels_last changes the layout, not the training: three MoCo steps
    from the same weights on the same views give the same losses and weights (to float rounding)."""
    from brittle.ssl.fit import _set_memory_format
    from brittle.ssl.methods import MoCo
    from brittle.ssl.networks import small_cnn

    torch.manual_seed(0)
    views = [torch.randn(32, 1, 8, 8), torch.randn(32, 1, 8, 8)]
    base = MoCo(small_cnn(1, 8), max_epochs=1, batch_size=32, memory_bank=64)
    runs = {}
    for name in ("contiguous", "channels_last"):
        model = copy.deepcopy(base)
        _set_memory_format(model, name)
        model.log = lambda *args, **kwargs: None
        optim = torch.optim.SGD(model.trainable(), lr=0.06, momentum=0.9)
        torch.manual_seed(1)   # the same batch shuffles of the key encoder
        losses = []
        for step in range(3):
            batch = model.on_after_batch_transfer((views, torch.zeros(32)), 0)
            assert batch[0][0].is_contiguous(memory_format=model.memory_format)
            loss = model.training_step(batch, step)
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(float(loss))
        runs[name] = (losses, model)
    conv = runs["channels_last"][1].backbone[3].weight   # [16, 8, 3, 3]: the layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    np.testing.assert_allclose(runs["channels_last"][0], runs["contiguous"][0], rtol=1e-5)
    for a, b in zip(runs["channels_last"][1].parameters(), runs["contiguous"][1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_pretraining_runs_on_the_gpu_it_is_given(monkeypatch, tmp_path):
    """device=cuda:1 pretrains on GPU 1 (Lightning's devices=[1]), not GPU 0 (devices=1)."""
    import pytorch_lightning as pl

    from brittle.ssl import fit

    seen: dict = {}

    class Recorded(Exception):
        pass

    def trainer(**kwargs):
        seen.update(kwargs)
        raise Recorded

    monkeypatch.setattr(pl, "Trainer", trainer)
    cfg = make_cfg(["backbone=moco_small", "dataset.train_subset=100", "backbone.epochs=1"])
    data = load_data(cfg)
    with pytest.raises(Recorded):
        fit.fit_backbone(cfg.backbone, cfg.dataset.ssl_transform, cfg.dataset.normalize, data.train,
                         0, torch.device("cuda:1"), False)
    assert (seen["accelerator"] == "gpu" and seen["devices"] == [1]
            and seen["deterministic"] is False)
    from brittle.ssl.lightning import lightning_device
    assert lightning_device(torch.device("cuda")) == {"accelerator": "gpu", "devices": [0]}
    assert lightning_device(torch.device("cpu")) == {"accelerator": "cpu", "devices": 1}


def test_pretraining_leaves_the_determinism_flags_as_it_found_them(tmp_path):
    """Lightning's deterministic=True (used on CPU) must not leak into the retraining after it."""
    import os

    cfg = make_cfg(["backbone=moco_small", "dataset.train_subset=100", "backbone.epochs=1",
                    "backbone.batch_size=32"], cache_dir=tmp_path)
    data = load_data(cfg)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    torch.backends.cudnn.benchmark = True
    try:
        pretrain(cfg, data)
        after = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                 os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    finally:
        torch.backends.cudnn.benchmark = before[1]
    assert after == (before[0], True, before[2])


def test_a_killed_pretraining_resumes_to_the_same_weights(monkeypatch, tmp_path):
    """Saved every 2 epochs, killed in epoch 3, resumed: the same backbone and curves as a fit
    that was never interrupted (views, batch order and MoCo's memory bank included)."""
    import pytorch_lightning as pl

    from brittle.ssl import fit
    from brittle.ssl.resume import LAST

    cfg = make_cfg(["backbone=moco_small", "dataset.train_subset=120", "backbone.epochs=4",
                    "backbone.batch_size=32", "backbone.memory_bank=64", "backbone.knn_every=2"])
    data = load_data(cfg)

    def run(resume, every=2):
        return fit.fit_backbone(cfg.backbone, cfg.dataset.ssl_transform, cfg.dataset.normalize,
                                data.train, 0, torch.device("cpu"), False, resume=resume,
                                save_every=every)

    whole = run(None)

    class Killed(RuntimeError):
        pass

    class KillInEpoch3(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.current_epoch == 2 and trainer.global_step > 0:
                raise Killed

    real = pl.Trainer
    monkeypatch.setattr(pl, "Trainer", lambda **kw: real(**{**kw, "callbacks": [*kw["callbacks"],
                                                                                KillInEpoch3()]}))
    with pytest.raises(Killed):
        run(tmp_path)
    monkeypatch.setattr(pl, "Trainer", real)
    assert (tmp_path / LAST).is_file()
    resumed = run(tmp_path)
    assert resumed.losses == whole.losses and resumed.knn == whole.knn and len(whole.losses) == 4
    for a, b in zip(whole.net.state_dict().values(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # and a fit that was never saved differs from one resumed with a different start
    assert not (tmp_path / f".{LAST}").exists()


def test_a_pretraining_log_holds_brittles_lines_and_real_warnings_only(tmp_path, caplog):
    """Neither Lightning's cloud-logger tip nor torch's LeafSpec deprecation (raised inside
    Lightning) reaches the user; brittle's own lines and genuine warnings still do."""
    import logging
    import warnings

    cfg = make_cfg(["backbone=moco_small", "dataset.train_subset=100", "backbone.epochs=1",
                    "backbone.batch_size=32"], cache_dir=tmp_path)
    data = load_data(cfg)
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrain(cfg, data)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    assert "litlogger" not in caplog.text and "GPU available" not in caplog.text
    assert "pretrained MoCo for 1 epochs" in caplog.text
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "LeafSpec" in m] and "a real warning" in messages
    # restored
    assert logging.getLogger("pytorch_lightning.utilities.rank_zero").level == logging.NOTSET


def test_the_papers_backbone_is_lightlys_resnet18_with_split_batch_norm():
    """The reference code's moco.py: lightly's ResNetGenerator('resnet-18', num_splits=8), its
    children up to the classifier, then global average pooling."""
    from lightly.models import ResNetGenerator
    from lightly.models.batchnorm import SplitBatchNorm

    net = instantiate(make_cfg(["backbone=moco_r18", "dataset=cifar10",
                                "dataset.root=/data/cifar10"]).backbone.net)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(isinstance(m, SplitBatchNorm) and m.num_splits == 8 for m in norms)
    torch.manual_seed(0)
    reference = ResNetGenerator("resnet-18", num_splits=8)
    net.load_state_dict({k: v for k, v in zip(net.state_dict(), reference.state_dict().values())})
    x = torch.randn(16, 3, 32, 32)
    net.eval(), reference.eval()
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(reference.children())[:-1],
                                       torch.nn.AdaptiveAvgPool2d(1))(x).flatten(1)
        assert torch.allclose(net(x), expected, atol=1e-5)
    # a batch that is not a multiple of the splits is one clear error before any training
    cfg = make_cfg(["backbone=moco_small", "backbone/net=resnet18_lightly",
                    "backbone.net.num_splits=8", "backbone.batch_size=60",
                    "dataset.train_subset=100", "backbone.memory_format=contiguous"])
    with pytest.raises(BrittleError, match=r"backbone.batch_size=60 .* is not a multiple of "
                                           r"backbone.net.num_splits=8"):
        pretrain(cfg, load_data(cfg))


def test_the_papers_moco_backbone_pretrains_a_step(tmp_path):
    """moco_r18 as configured (split batch norm, contiguous layout) trains and embeds."""
    cfg = make_cfg(["backbone=moco_r18", "dataset.train_subset=64", "dataset.test_subset=16",
                    "backbone.epochs=1", "backbone.batch_size=32", "backbone.memory_bank=64",
                    "backbone.knn_every=0"], cache_dir=tmp_path)
    data = load_data(cfg)
    emb = embed(cfg, data, pretrain(cfg, data))
    assert emb.train.shape == (64, 512) and np.isfinite(np.asarray(emb.train)).all()
