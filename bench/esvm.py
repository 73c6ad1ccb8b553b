"""Benchmark: batched torch Exemplar SVMs against the scikit-learn reference recipe, same run.

On real features: digits (the default MoCo backbone), and CIFAR-10 from ../shared/data embedded
with the project's MoCo ResNet-18 (the experiment=cifar10_small checkpoint), at 5,000 and 50,000
training features. Prints seconds per query for both backends and top-100 overlap per query;
the last line summarises the 50k case.

    .venv/bin/python bench/esvm.py [--queries 30]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brittle.api import embed, load_data, pretrain, rank  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.data.datasets import balanced_subset  # noqa: E402
from brittle.runtime.cache import StageCache  # noqa: E402
from brittle.scorers.esvm.scorer import ExemplarSVM  # noqa: E402
from brittle.ssl.features import features  # noqa: E402

TOP = 100


def cfg_for(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compare(name: str, train: np.ndarray, train_y: np.ndarray, queries: np.ndarray,
            query_y: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds per query of each backend and the per-query top-100 overlap."""
    k = min(TOP, int(np.bincount(train_y).min()))
    ids = np.arange(len(queries))
    ref, fast = ExemplarSVM(backend="sklearn"), ExemplarSVM(backend="torch")
    start = time.perf_counter()
    a = rank(ref, train, train_y, queries, query_y, ids, k)
    t_ref = (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    b = rank(fast, train, train_y, queries, query_y, ids, k)
    t_fast = (time.perf_counter() - start) / len(queries)
    overlap = np.array([len(set(x) & set(y)) / k for x, y in zip(a, b)])
    print(f"{name:<22} {train.shape[0]:>6} x {train.shape[1]:<4} queries {len(queries):>4}  "
          f"sklearn {t_ref:8.4f} s/q  torch {t_fast:8.4f} s/q  speedup {t_ref / t_fast:6.1f}x  "
          f"top{k} overlap mean {overlap.mean():.4f} min {overlap.min():.4f}", flush=True)
    return t_ref / t_fast, overlap


def pick(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    return balanced_subset(labels, n, seed, "queries")


def cifar_features(n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    tgz = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if not tgz.exists():
        print(f"CIFAR-10 not found at {tgz}: skipping the CIFAR-10 cases")
        return None
    small = cfg_for(["experiment=cifar10_small", f"dataset.root={tgz}"])
    cache = StageCache(Path(small.cache_dir))
    ckpt = pretrain(small, load_data(small))  # cached after the first run (~7 min on CPU)
    full = cfg_for(["experiment=cifar10_small", f"dataset.root={tgz}", "dataset.train_subset=null",
                    "dataset.test_subset=null"])
    data = load_data(full)

    def compute(tmp: Path) -> dict:
        import torch
        from hydra.utils import instantiate

        from brittle.ssl.checkpoints import load_backbone_weights
        net = load_backbone_weights(instantiate(small.backbone.net), ckpt / "backbone.pt")
        mean, std = list(small.dataset.normalize.mean), list(small.dataset.normalize.std)
        start = time.perf_counter()
        for name, images in (("train", data.train.images), ("test", data.test.images)):
            np.save(tmp / f"{name}.npy", features(net, images, mean, std, torch.device("cpu")))
        return {"seconds": time.perf_counter() - start}

    out = cache.get_or_compute("bench-cifar-embed-all", {"ckpt": str(ckpt)}, compute)
    q = pick(data.test.labels, n_queries)
    return np.load(out / "train.npy"), data.train.labels, np.load(out / "test.npy")[q], data.test.labels[q]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100, help="test queries per case (balanced)")
    args = parser.parse_args()

    cfg = cfg_for([])
    data = load_data(cfg)
    emb = embed(cfg, data, pretrain(cfg, data))
    q = pick(data.test.labels, min(100, len(data.test)))
    compare("digits moco_small", emb.train, data.train.labels, emb.test[q], data.test.labels[q])

    cifar = cifar_features(args.queries)
    if cifar is None:
        return
    train, train_y, queries, query_y = cifar
    sub = balanced_subset(train_y, 5000, 0, "train")
    compare("cifar10 moco_r18 5k", train[sub], train_y[sub], queries, query_y)
    speedup, overlap = compare("cifar10 moco_r18 50k", train, train_y, queries, query_y)
    print(f"esvm_speedup={speedup:.1f} top100_overlap_mean={overlap.mean():.4f} "
          f"top100_overlap_min={overlap.min():.4f}")


if __name__ == "__main__":
    main()
