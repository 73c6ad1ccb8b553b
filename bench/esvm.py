"""Benchmark: batched torch Exemplar SVMs against the scikit-learn reference recipe, same run.

On real features: digits (the default MoCo backbone), and CIFAR-10 from ../shared/data embedded
with the project's MoCo ResNet-18 (the experiment=cifar10_small checkpoint), at 5,000 and 50,000
training features. Prints seconds per query for both backends and the top-100 overlap per query;
on the 50,000 features (5,000-image class pools, the paper's) also the overlap of the top-k sets
at every prefix size the bisection can test up to K = 1280 (multiples of K / 2^7 = 10), listed at
K / 2^j and as the minimum over all of them. The digits and 5k cases alternate the backends
`--repeats` times and keep each one's fastest pass (the 50k case runs once). The last line
holds the keys `esvm_speedup=` (50k), `esvm_speedup_5k=` and the per-prefix figures; the figures
also go to bench/results/esvm.json (bench/record.py). `--smoke`: digits only, a 1-epoch backbone
in a fresh cache, 10 queries, one pass.

    .venv/bin/python bench/esvm.py [--queries 30] [--smoke] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402
from brittle.api import embed, load_data, pretrain, rank  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.data.datasets import balanced_subset  # noqa: E402
from brittle.runtime.cache import StageCache  # noqa: E402
from brittle.scorers.esvm.scorer import ExemplarSVM  # noqa: E402
from brittle.ssl.features import features  # noqa: E402

TOP = 100
K, BUDGET = 1280, 7   # the paper's CIFAR-10 search: prefixes are multiples of K / 2^BUDGET


def cfg_for(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def compare(name: str, train: np.ndarray, train_y: np.ndarray, queries: np.ndarray,
            query_y: np.ndarray, record: Record, depth: int = TOP, repeats: int = 1
            ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Speedup of torch over sklearn, the per-query top-100 overlap, and both rankings int64
    [Q, depth] (sklearn's, torch's); each backend's seconds per query go to `record`. With
    `repeats`, the backends alternate that many times and each keeps its fastest pass (this
    machine's speed drifts between seconds)."""
    depth = min(depth, int(np.bincount(train_y).min()))
    k = min(TOP, depth)
    ids = np.arange(len(queries))
    times: dict[str, list[float]] = {"sklearn": [], "torch": []}
    ranks = {}
    for _ in range(repeats):
        for backend in times:
            start = time.perf_counter()
            ranks[backend] = rank(ExemplarSVM(backend=backend), train, train_y, queries, query_y,
                                  ids, depth)
            times[backend].append((time.perf_counter() - start) / len(queries))
    t_ref, t_fast = min(times["sklearn"]), min(times["torch"])
    a, b = ranks["sklearn"], ranks["torch"]
    overlap = prefix_overlap(a, b, k)
    print(f"{name:<22} {train.shape[0]:>6} x {train.shape[1]:<4} queries {len(queries):>4}  "
          f"sklearn {t_ref:8.4f} s/q  torch {t_fast:8.4f} s/q  speedup {t_ref / t_fast:6.1f}x  "
          f"top{k} overlap mean {overlap.mean():.4f} min {overlap.min():.4f}"
          + (f"  (fastest of {repeats})" if repeats > 1 else ""), flush=True)
    key = name.replace(" ", "_")
    record.add(**{f"{key}_sklearn_s_per_query": t_ref, f"{key}_torch_s_per_query": t_fast,
                  f"{key}_speedup": t_ref / t_fast, f"{key}_top{k}_overlap_mean": overlap.mean(),
                  f"{key}_top{k}_overlap_min": overlap.min(), f"{key}_queries": len(queries)})
    return t_ref / t_fast, overlap, a, b


def prefix_overlap(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """|top-k of a & top-k of b| / k per query, for rankings int [Q, >= k]."""
    return np.array([len(set(x[:k]) & set(y[:k])) / k for x, y in zip(a, b)])


def report_prefixes(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Overlap of the two rankings at every prefix the bisection can test (multiples of
    K / 2^BUDGET up to K): printed at K / 2^j, summarised over all of them."""
    step = K // 2 ** BUDGET
    sizes = list(range(step, K + 1, step))
    means = {k: float(prefix_overlap(a, b, k).mean()) for k in sizes}
    mins = {k: float(prefix_overlap(a, b, k).min()) for k in sizes}
    for j in range(BUDGET, -1, -1):
        k = K // 2 ** j
        print(f"  prefix {k:>5}: overlap mean {means[k]:.4f} min {mins[k]:.4f}")
    worst = min(sizes, key=lambda k: means[k])
    print(f"  all {len(sizes)} prefixes {step}..{K}: lowest mean {means[worst]:.4f} (k={worst}), "
          f"lowest single query {min(mins.values()):.4f}")
    return {"prefix_overlap_mean_min": means[worst], "prefix_overlap_min": min(mins.values())}


def pick(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    return balanced_subset(labels, n, seed, "queries")


def cifar_features(n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    tgz = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if not tgz.exists():
        print(f"CIFAR-10 not found at {tgz}: skipping the CIFAR-10 cases")
        return None
    small = cfg_for(["experiment=cifar10_small", f"dataset.root={tgz}"])
    cache = StageCache(Path(small.cache_dir))
    ckpt = pretrain(small, load_data(small))  # cached after the first run
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
    return (np.load(out / "train.npy"), data.train.labels, np.load(out / "test.npy")[q],
            data.test.labels[q])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100, help="test queries per case (balanced)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternating passes of the digits and 5k cases")
    add_arguments(parser)
    args = parser.parse_args()
    record = Record("esvm", args)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg_for([f"cache_dir={tmp}", "backbone.epochs=1"] if args.smoke else [])
        data = load_data(cfg)
        emb = embed(cfg, data, pretrain(cfg, data))
        q = pick(data.test.labels, 10 if args.smoke else min(100, len(data.test)))
        train, test = np.asarray(emb.train), np.asarray(emb.test)
        compare("digits moco_small", train, data.train.labels, test[q], data.test.labels[q], record,
                repeats=1 if args.smoke else args.repeats)
    cifar = None if args.smoke else cifar_features(args.queries)
    if cifar is None:
        record.done()
        return
    train, train_y, queries, query_y = cifar
    sub = balanced_subset(train_y, 5000, 0, "train")
    speedup_5k, _, _, _ = compare("cifar10 moco_r18 5k", train[sub], train_y[sub], queries, query_y,
                                  record, repeats=args.repeats)
    speedup, overlap, a, b = compare("cifar10 moco_r18 50k", train, train_y, queries, query_y,
                                     record, depth=K)
    prefixes = report_prefixes(a, b)
    record.add(esvm_speedup=speedup, esvm_speedup_5k=speedup_5k, **prefixes)
    print(f"esvm_speedup={speedup:.1f} esvm_speedup_5k={speedup_5k:.1f} "
          f"top100_overlap_mean={overlap.mean():.4f} top100_overlap_min={overlap.min():.4f} "
          + " ".join(f"{k}={v:.4f}" for k, v in prefixes.items()))
    record.done()


if __name__ == "__main__":
    main()
