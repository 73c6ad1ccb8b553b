"""Benchmark: self-supervised pretraining with batched device augmentation (brittle/ssl/views.py)
against lightly's per-image transforms in the DataLoader, side by side in one run, on digits:

1. augmented views per second (the default MoCo v2 transform of digits);
2. one pretraining epoch of the default backbone, end to end (loading, views, forward, backward,
   optimiser step): the median of the epochs of a 6-epoch fit, timed from Lightning's epoch-start
   to epoch-end hooks (so neither the Trainer's set-up nor the kNN monitor is in it), the two paths
   alternating, three times each, after a warm-up fit of each; also the pipeline as it was before
   batched views (per-image views, contiguous layout: `backbone.memory_format=contiguous`);
3. kNN accuracy of the default backbone after its default 30 epochs, both paths, for seeds 0, 1, 2
   (143 held-out images each: one image is 0.7 points, so one seed alone cannot resolve 1 point),
   with the whole fit's time;
4. the cold default run (`python run.py` with an empty cache), device path.

The last line is `pretrain_views_speedup=<x> pretrain_epoch_speedup=<y> knn_batched=<a> knn_per_image=<b>`.

    .venv/bin/python bench/pretrain.py
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brittle.api import load_data, pretrain  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.runtime.cache import StageCache  # noqa: E402
from brittle.ssl.fit import Views  # noqa: E402
from brittle.ssl.views import DeviceViews, view_specs  # noqa: E402

register_resolvers()


def cfg_for(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def views_per_second(images: np.ndarray, transform: dict) -> tuple[float, float]:
    """(batched device views/s, lightly per-image views/s) over every training image, 2 views each."""
    from hydra.utils import instantiate
    device = DeviceViews(view_specs(transform), images.shape[1])
    batches = [torch.from_numpy(images[i:i + 128]) for i in range(0, len(images), 128)]
    device(batches[0])
    start = time.perf_counter()
    for b in batches:
        device(b)
    batched = 2 * len(images) / (time.perf_counter() - start)
    per_image = Views(images, instantiate(transform))
    start = time.perf_counter()
    for i in range(len(images)):
        per_image[i]
    return batched, 2 * len(images) / (time.perf_counter() - start)


class EpochClock(pl.Callback):
    """Wall time of each training epoch, from epoch start to epoch end (before the module's own
    epoch-end work, the kNN monitor)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def fit(where: str, epochs: int | None, seed: int = 0, layout: str = "channels_last"
        ) -> tuple[float, float | None, list[float]]:
    """(seconds of the Lightning fit, final kNN accuracy, seconds of each epoch) of the default
    backbone, fresh cache."""
    extra = [f"backbone.epochs={epochs}"] if epochs else []
    clock = EpochClock()
    trainer_init = pl.Trainer.__init__

    def with_clock(self: pl.Trainer, *args, **kwargs) -> None:
        trainer_init(self, *args, callbacks=[clock], **kwargs)

    pl.Trainer.__init__ = with_clock
    try:
        with tempfile.TemporaryDirectory() as cache:
            cfg = cfg_for([f"backbone.augment_on={where}", f"backbone.memory_format={layout}",
                           "progress=false", f"cache_dir={cache}", f"seed={seed}", *extra])
            meta = StageCache.meta(pretrain(cfg, load_data(cfg)))
    finally:
        pl.Trainer.__init__ = trainer_init
    return float(meta["seconds"]), meta.get("knn_accuracy"), clock.seconds


# (augment_on, memory_format): today's two paths, and the pipeline before batched views
PATHS = {"batched": ("device", "channels_last"), "per-image": ("dataloader", "channels_last"),
         "before": ("dataloader", "contiguous")}


def epoch_seconds(rounds: int = 3) -> tuple[dict[str, float], list[float]]:
    """Median epoch of each path over `rounds` rounds of 6-epoch fits, the paths alternating (the
    first epoch of each fit, which warms up allocators and kernels, left out), and each round's
    per-image / batched ratio: this machine's speed drifts by up to 10% between minutes."""
    epochs: dict[str, list[float]] = {name: [] for name in PATHS}
    for where, layout in PATHS.values():   # warm-up, not counted: a process's first fits are slower
        fit(where, 2, layout=layout)
    ratios = []
    for _ in range(rounds):
        now = {name: fit(where, 6, layout=layout)[2][1:] for name, (where, layout) in PATHS.items()}
        ratios.append(statistics.median(now["per-image"]) / statistics.median(now["batched"]))
        for name in PATHS:
            epochs[name] += now[name]
    return {name: statistics.median(v) for name, v in epochs.items()}, ratios


def cold_default_run() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "run.py", f"cache_dir={tmp}/cache", f"hydra.run.dir={tmp}/run",
                        "progress=false"], cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    cfg = cfg_for([])
    images = load_data(cfg).train.images
    batched, per_image = views_per_second(images, OmegaConf.to_container(cfg.dataset.ssl_transform, resolve=True))
    print(f"views/s, digits MoCo v2 transform: batched {batched:,.0f}  per-image {per_image:,.0f}  "
          f"({batched / per_image:.1f}x)", flush=True)
    epoch, ratios = epoch_seconds()
    dev_epoch, img_epoch = epoch["batched"], epoch["per-image"]
    print(f"epoch of the default backbone (median of 15 per path): batched {dev_epoch:.3f} s  per-image "
          f"{img_epoch:.3f} s  ({img_epoch / dev_epoch:.2f}x; per round "
          f"{', '.join(f'{r:.2f}x' for r in ratios)})", flush=True)
    print(f"epoch before this change (per-image views, contiguous layout): {epoch['before']:.3f} s  "
          f"({epoch['before'] / dev_epoch:.2f}x the batched epoch)", flush=True)
    knn: dict[str, list[float]] = {"device": [], "dataloader": []}
    for seed in (0, 1, 2):
        line = []
        for where, name in (("device", "batched"), ("dataloader", "per-image")):
            seconds, acc, _ = fit(where, None, seed)
            knn[where].append(float(acc))
            line.append(f"{name} {seconds:.1f} s, kNN {acc:.3f}")
        print(f"default 30 epochs, seed {seed}: " + "  ".join(line), flush=True)
    knn_dev, knn_img = float(np.mean(knn["device"])), float(np.mean(knn["dataloader"]))
    print(f"kNN accuracy, mean of 3 seeds: batched {knn_dev:.3f}  per-image {knn_img:.3f}  "
          f"(difference {100 * (knn_dev - knn_img):+.1f} points)", flush=True)
    cold = cold_default_run()
    print(f"cold default run (python run.py, empty cache): {cold:.1f} s", flush=True)
    print(f"pretrain_views_speedup={batched / per_image:.1f} pretrain_epoch_speedup={img_epoch / dev_epoch:.2f} "
          f"knn_batched={knn_dev:.3f} knn_per_image={knn_img:.3f}")


if __name__ == "__main__":
    main()
