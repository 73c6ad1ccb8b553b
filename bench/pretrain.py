"""Benchmark: self-supervised pretraining with batched device augmentation (brittle/augment.py)
against lightly's per-image transforms in the DataLoader, side by side in one run, on digits:

1. augmented views per second (the default MoCo v2 transform of digits);
2. pretraining epochs of the default backbone, end to end (a 5-epoch fit, per epoch);
3. kNN accuracy of the default backbone after its default 30 epochs, both paths;
4. the cold default run (`python run.py` with an empty cache), device path.

The last line is `pretrain_views_speedup=<x> pretrain_epoch_speedup=<y> knn_batched=<a> knn_per_image=<b>`.

    .venv/bin/python bench/pretrain.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brittle.api import load_data, pretrain  # noqa: E402
from brittle.artifacts import StageCache  # noqa: E402
from brittle.augment import DeviceViews, view_specs  # noqa: E402
from brittle.config import register_resolvers  # noqa: E402
from brittle.ssl import Views  # noqa: E402

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


def fit(where: str, epochs: int | None) -> tuple[float, float | None]:
    """(seconds of the Lightning fit, final kNN accuracy) of the default backbone, fresh cache."""
    extra = [f"backbone.epochs={epochs}"] if epochs else []
    with tempfile.TemporaryDirectory() as cache:
        cfg = cfg_for([f"backbone.augment_on={where}", "progress=false", f"cache_dir={cache}", *extra])
        meta = StageCache.meta(pretrain(cfg, load_data(cfg)))
    return float(meta["seconds"]), meta.get("knn_accuracy")


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
    dev5, _ = fit("device", 5)
    img5, _ = fit("dataloader", 5)
    print(f"epoch of the default backbone (5-epoch fit / 5): batched {dev5 / 5:.2f} s  per-image "
          f"{img5 / 5:.2f} s  ({img5 / dev5:.2f}x)", flush=True)
    dev30, knn_dev = fit("device", None)
    img30, knn_img = fit("dataloader", None)
    print(f"default 30 epochs: batched {dev30:.1f} s, kNN {knn_dev:.3f}  per-image {img30:.1f} s, "
          f"kNN {knn_img:.3f}", flush=True)
    cold = cold_default_run()
    print(f"cold default run (python run.py, empty cache): {cold:.1f} s", flush=True)
    print(f"pretrain_views_speedup={batched / per_image:.1f} pretrain_epoch_speedup={img5 / dev5:.2f} "
          f"knn_batched={knn_dev:.3f} knn_per_image={knn_img:.3f}")


if __name__ == "__main__":
    main()
