"""Part airbench: brittle's fast recipe (trainer=fast arch=airnet) against airbench's own
`train94` (airbench 0.1.8, the procedure it re-implements), 3 seeds each on the same decoded
CIFAR-10 images: mean TTA test accuracy and seconds a model, and the difference (target: brittle
within 0.3 points at no more time). airbench is not a dependency of brittle: `pip install
'brittle[bench]'`, or the wheel `make gpu-pack` puts in .whl/. It trains on CUDA only.

airbench reads `cifar10/{train,test}.pt` under the working directory (its CifarLoader; train94
builds its own test loader from that path, downloading when absent): the part writes brittle's
decoded images there, in airbench's format, in a temporary folder it works in.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.gpu.common import Context, Skip, compose_cfg

FAST = ["arch=airnet", "trainer=fast"]


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def write_airbench_files(folder: Path, data) -> None:
    """brittle's decoded sets as airbench's cifar10/{train,test}.pt: uint8 [N, 32, 32, 3]."""
    (folder / "cifar10").mkdir(parents=True, exist_ok=True)
    # airbench initialises its whitening layer from the first 5,000 training images; the tarball's
    # class-folder order would make them one class, so its training set is shuffled once
    order = np.random.default_rng(0).permutation(len(data.train))
    for split, images, labels in (("train", data.train.images[order], data.train.labels[order]),
                                  ("test", data.test.images, data.test.labels)):
        torch.save({"images": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 2, 3, 1))),
                    "labels": torch.from_numpy(labels.astype(np.int64)),
                    "classes": list(data.train.classes)}, folder / "cifar10" / f"{split}.pt")


def _timed(train) -> tuple[float, torch.nn.Module]:
    torch.cuda.synchronize()
    start = time.perf_counter()
    model = train()
    torch.cuda.synchronize()
    return time.perf_counter() - start, model


def airbench_runs(seeds: list[int]) -> tuple[list[float], list[float]]:
    """Seconds and TTA test accuracy of train94 per seed (cwd: the folder of its files), after
    one untimed warm-up model."""
    import airbench
    from airbench import lib_airbench94 as a94
    hyp = a94.hyp
    loader = airbench.CifarLoader("cifar10", train=True, batch_size=hyp["opt"]["batch_size"],
                                  aug=hyp["aug"], altflip=True)
    test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
    a94.train94(loader, verbose=False)
    seconds, accs = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        took, model = _timed(lambda: a94.train94(loader, verbose=False))
        seconds.append(took)
        accs.append(float(airbench.evaluate(model, test, tta_level=hyp["net"]["tta_level"])))
    return seconds, accs


def brittle_runs(engine, seeds: list[int]) -> tuple[list[float], list[float]]:
    """The same for brittle's engine: training time alone, then TTA test accuracy."""
    engine.train(engine.full_keep(), engine.train_y, seed=10_000)
    seconds, accs = [], []
    for seed in seeds:
        took, model = _timed(lambda s=seed: engine.train(engine.full_keep(), engine.train_y, s))
        seconds.append(took)
        pred = engine.logits(model, engine.test_x).argmax(1).cpu().numpy()
        accs.append(float((pred == engine.test_y).mean()))
    return seconds, accs


def airbench_part(ctx: Context) -> tuple[dict, str]:
    if not torch.cuda.is_available():
        raise Skip("airbench trains on CUDA only (its network is fp16 on .cuda())")
    try:
        import airbench  # noqa: F401
    except ImportError as exc:
        raise Skip(f"airbench not importable ({exc}): pip install 'brittle[bench]', or the "
                   f"wheel make gpu-pack puts in .whl/") from exc
    from brittle.api import build_engine, load_data
    cfg = compose_cfg(ctx.cifar_base() + FAST)
    data = load_data(cfg)
    engine = build_engine(cfg, data)
    seeds = list(range(3))
    with tempfile.TemporaryDirectory() as tmp:
        write_airbench_files(Path(tmp), data)
        with _inside(Path(tmp)):
            air_s, air_acc = airbench_runs(seeds)
    ours_s, ours_acc = brittle_runs(engine, seeds)
    diff = 100 * (np.mean(ours_acc) - np.mean(air_acc))
    # brittle initialises its whitening from its first whiten_images training images, in the
    # dataset's order: how many classes they hold says whether that init saw them all
    whiten = engine.train_y[:int(cfg.trainer.whiten_images)].unique().numel()
    out: dict[str, Any] = {
        "seeds": seeds, "airbench_seconds": air_s, "airbench_tta_accuracy": air_acc,
        "brittle_seconds": ours_s, "brittle_tta_accuracy": ours_acc,
        "airbench_mean_accuracy": float(np.mean(air_acc)),
        "brittle_mean_accuracy": float(np.mean(ours_acc)),
        "airbench_mean_seconds": float(np.mean(air_s)),
        "brittle_mean_seconds": float(np.mean(ours_s)), "difference_points": float(diff),
        "seconds_ratio": float(np.mean(ours_s) / np.mean(air_s)),
        "brittle_whitening_classes": int(whiten),
        "meets_target": bool(diff >= -0.3 and np.mean(ours_s) <= np.mean(air_s))}
    return out, (f"airbench {100 * out['airbench_mean_accuracy']:.2f}% in "
                 f"{out['airbench_mean_seconds']:.2f} s, brittle "
                 f"{100 * out['brittle_mean_accuracy']:.2f}% in "
                 f"{out['brittle_mean_seconds']:.2f} s "
                 f"({diff:+.2f} points, {out['seconds_ratio']:.2f}x the time; target met: "
                 f"{str(out['meets_target']).lower()})")
