"""Benchmark: self-supervised pretraining with batched device augmentation (brittle/ssl/views.py)
against lightly's per-image transforms in the DataLoader, side by side in one run, on digits:

1. augmented views per second (the default MoCo v2 transform of digits);
2. one pretraining epoch of the default backbone, end to end (loading, views, forward, backward,
   optimiser step): the median of the epochs of a 6-epoch fit, as the fit itself records them
   (`epoch_seconds` of the pretrain stage's record: epoch start to end, so neither the Trainer's
   set-up nor the kNN monitor is in it), the two paths alternating, three times each, after a
   warm-up fit of each; also the pipeline as it was before batched views (per-image views,
   contiguous layout: `backbone.memory_format=contiguous`);
3. kNN accuracy of the default backbone after its default 30 epochs, both paths, for seeds 0, 1, 2
   (143 held-out images each: one image is 0.7 points, so one seed alone cannot resolve 1 point),
   with the whole fit's time.
(The cold default run, `python run.py` with an empty cache, is bench/default_run.py's.)

Every fit has a fresh cache. The last line is `pretrain_views_speedup=<x>
pretrain_epoch_speedup=<y> knn_batched=<a> knn_per_image=<b>`; the figures also go to
bench/results/pretrain.json (bench/record.py). `--smoke`: 128 training images, 2-epoch fits, one
round, no warm-up, one seed.

    .venv/bin/python bench/pretrain.py [--smoke] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402
from brittle.api import load_data, pretrain  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.runtime.cache import StageCache  # noqa: E402
from brittle.ssl.fit import Views  # noqa: E402
from brittle.ssl.views import DeviceViews, view_specs  # noqa: E402

register_resolvers()


@dataclass(frozen=True)
class Size:
    """How much the bench measures: views over `view_images` images, `rounds` rounds of
    `epochs`-epoch fits, kNN after the default fit (`knn_epochs`, None: the default) for `seeds`."""
    extra: tuple[str, ...]
    view_images: int | None
    warmup_epochs: int
    epochs: int
    rounds: int
    knn_epochs: int | None
    seeds: tuple[int, ...]


FULL = Size((), None, 2, 6, 3, None, (0, 1, 2))
SMOKE = Size(("dataset.train_subset=128", "backbone.knn_every=1"), 64, 0, 2, 1, 1, (0,))


def cfg_for(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def views_per_second(images: np.ndarray, transform: dict) -> tuple[float, float]:
    """(batched device views/s, lightly per-image views/s) over `images`, 2 views each."""
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


def fit(size: Size, where: str, epochs: int | None, seed: int = 0, layout: str = "channels_last"
        ) -> tuple[float, float | None, list[float]]:
    """(seconds of the Lightning fit, final kNN accuracy, seconds of each epoch) of the default
    backbone, fresh cache: all three from the pretrain stage's own record (meta.json)."""
    extra = [f"backbone.epochs={epochs}"] if epochs else []
    with tempfile.TemporaryDirectory() as cache:
        cfg = cfg_for([f"backbone.augment_on={where}", f"backbone.memory_format={layout}",
                       "progress=false", f"cache_dir={cache}", f"seed={seed}", *size.extra, *extra])
        meta = StageCache.meta(pretrain(cfg, load_data(cfg)))
    return float(meta["seconds"]), meta.get("knn_accuracy"), list(meta["epoch_seconds"])


# (augment_on, memory_format): today's two paths, and the pipeline before batched views
PATHS = {"batched": ("device", "channels_last"), "per-image": ("dataloader", "channels_last"),
         "before": ("dataloader", "contiguous")}


def epoch_seconds(size: Size) -> tuple[dict[str, float], list[float]]:
    """Median epoch of each path over `size.rounds` rounds of fits, the paths alternating (the
    first epoch of each fit, which warms up allocators and kernels, left out), and each round's
    per-image / batched ratio: this machine's speed drifts by up to 10% between minutes."""
    epochs: dict[str, list[float]] = {name: [] for name in PATHS}
    for where, layout in PATHS.values() if size.warmup_epochs else ():
        # a warm-up, not counted: a process's first fits are slower
        fit(size, where, size.warmup_epochs, layout=layout)
    ratios = []
    for _ in range(size.rounds):
        now = {name: fit(size, where, size.epochs, layout=layout)[2][1:]
               for name, (where, layout) in PATHS.items()}
        ratios.append(statistics.median(now["per-image"]) / statistics.median(now["batched"]))
        for name in PATHS:
            epochs[name] += now[name]
    return {name: statistics.median(v) for name, v in epochs.items()}, ratios


def knn_figures(size: Size, record: Record) -> tuple[float, float]:
    """Mean kNN accuracy of each path after the default fit, over the size's seeds."""
    knn: dict[str, list[float]] = {"device": [], "dataloader": []}
    for seed in size.seeds:
        line = []
        for where, name in (("device", "batched"), ("dataloader", "per-image")):
            seconds, acc, _ = fit(size, where, size.knn_epochs, seed)
            knn[where].append(float(acc) if acc is not None else float("nan"))
            record.add(**{f"fit_seconds_{name}_seed{seed}": seconds, f"knn_{name}_seed{seed}": acc})
            line.append(f"{name} {seconds:.1f} s, kNN {knn[where][-1]:.3f}")
        print(f"default fit, seed {seed}: " + "  ".join(line), flush=True)
    knn_dev, knn_img = float(np.mean(knn["device"])), float(np.mean(knn["dataloader"]))
    print(f"kNN accuracy, mean of {len(size.seeds)} seeds: batched {knn_dev:.3f}  "
          f"per-image {knn_img:.3f}  (difference {100 * (knn_dev - knn_img):+.1f} points)",
          flush=True)
    record.add(knn_batched=knn_dev, knn_per_image=knn_img)
    return knn_dev, knn_img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    size, record = SMOKE if args.smoke else FULL, Record("pretrain", args)
    cfg = cfg_for(list(size.extra))
    images = load_data(cfg).train.images[:size.view_images]
    transform = OmegaConf.to_container(cfg.dataset.ssl_transform, resolve=True)
    batched, per_image = views_per_second(images, transform)
    print(f"views/s, digits MoCo v2 transform: batched {batched:,.0f}  per-image {per_image:,.0f}  "
          f"({batched / per_image:.1f}x)", flush=True)
    record.add(views_per_s_batched=batched, views_per_s_per_image=per_image,
               pretrain_views_speedup=batched / per_image)
    epoch, ratios = epoch_seconds(size)
    dev_epoch, img_epoch = epoch["batched"], epoch["per-image"]
    n = size.rounds * (size.epochs - 1)
    print(f"epoch of the default backbone (median of {n} per path): batched {dev_epoch:.3f} s  "
          f"per-image {img_epoch:.3f} s  ({img_epoch / dev_epoch:.2f}x; per round "
          f"{', '.join(f'{r:.2f}x' for r in ratios)})", flush=True)
    print("epoch before batched views (per-image views, contiguous layout): "
          f"{epoch['before']:.3f} s  ({epoch['before'] / dev_epoch:.2f}x the batched epoch)",
          flush=True)
    record.add(epoch_seconds_batched=dev_epoch, epoch_seconds_per_image=img_epoch,
               epoch_seconds_before=epoch["before"], pretrain_epoch_speedup=img_epoch / dev_epoch,
               epoch_speedup_per_round=ratios)
    knn_dev, knn_img = knn_figures(size, record)
    print(f"pretrain_views_speedup={batched / per_image:.1f} "
          f"pretrain_epoch_speedup={img_epoch / dev_epoch:.2f} knn_batched={knn_dev:.3f} "
          f"knn_per_image={knn_img:.3f}")
    record.done()


if __name__ == "__main__":
    main()
