"""The GPU check's first parts, in-process on full CIFAR-10:

- fast_recipe: trainer=fast, arch=airnet: seconds a model and TTA test accuracy over a few seeds
  (target: >= 93% in <= 5 s a model);
- paper_esvm: trainer=paper, arch=resnet9: one model's seconds and test accuracy (target: >= 92%);
  then ESVM scoring of all 10,000 test images against their 5,000 same-class training features
  (penultimate features of that ResNet-9): torch backend on the GPU; cuML when importable, timed
  on 200 targets and extrapolated; top-100 overlap with the scikit-learn reference on a sample;
- pretrain_views: images/s of one MoCo ResNet-18 epoch with batched device views against lightly's
  per-image views in 8 DataLoader workers.
"""
from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import torch

from bench.gpu.common import Context, compose_cfg, engine_for

FAST = ["arch=airnet", "trainer=fast"]
TINY_FAST = ["trainer.epochs=1", "trainer.batch_size=100", "arch.model.width=8"]
PAPER = ["arch=resnet9", "trainer=paper"]
TINY_PAPER = ["trainer.recipe.epochs=1", "trainer.recipe.batch_size=100", "arch.model.width=8"]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_models(engine, seeds: list[int]) -> tuple[list[float], list[float], Any]:
    """Seconds (training and test predictions) and test accuracy per seed, after one untimed
    warm-up model (cuDNN autotuning, the caching allocator)."""
    engine.train(engine.full_keep(), engine.train_y, seed=10_000)
    seconds, accs, model = [], [], None
    for seed in seeds:
        _sync()
        start = time.perf_counter()
        model = engine.train(engine.full_keep(), engine.train_y, seed)
        pred = engine.logits(model, engine.test_x).argmax(1).cpu().numpy()
        _sync()
        seconds.append(time.perf_counter() - start)
        accs.append(float((pred == engine.test_y).mean()))
    return seconds, accs, model


def fast_recipe(ctx: Context) -> tuple[dict, str]:
    engine = engine_for(ctx.cifar_base() + FAST + (TINY_FAST if ctx.smoke else []))
    seconds, accs, _ = timed_models(engine, list(range(ctx.seeds)))
    return {"seconds": seconds, "test_accuracy": accs}, (
        f"airnet: {np.mean(seconds):.2f} s a model, TTA test accuracy {np.mean(accs):.4f} "
        f"(min {np.min(accs):.4f}) over {len(accs)} seeds")


def paper_esvm(ctx: Context) -> tuple[dict, str]:
    paper = PAPER + (TINY_PAPER if ctx.smoke else [])
    if not torch.cuda.is_available():   # the paper recipe's fp16 is a GPU precision
        paper.append("trainer.recipe.precision=fp32")
    engine = engine_for(ctx.cifar_base() + paper)
    seconds, accs, model = timed_models(engine, [0])
    n = 5 if ctx.smoke else 50
    esvm = esvm_figures(model, engine, n_reference=n, n_cuml=5 if ctx.smoke else 200)
    return {"paper_seconds": seconds, "paper_test_accuracy": accs, "esvm": esvm}, (
        f"resnet9: {seconds[0]:.1f} s a model, test accuracy {accs[0]:.4f}; ESVM torch "
        f"{esvm['torch_seconds']:.1f} s for {esvm['targets']} targets, top-100 overlap with "
        f"scikit-learn {esvm['torch_top100_overlap_mean']:.3f}")


@torch.no_grad()
def penultimate(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """ResNet-9 features before its linear head, float32 [M, 8 * width]."""
    body = torch.nn.Sequential(*list(model.children())[:-2])
    return torch.cat([body(part).float() for part in x.split(1000)]).cpu().numpy()


def esvm_figures(model, engine, n_reference: int, n_cuml: int) -> dict:
    from brittle.api import rank
    from brittle.scorers.esvm.scorer import ExemplarSVM, cuml_available
    train, test = penultimate(model, engine.train_x), penultimate(model, engine.test_x)
    train_y, test_y = engine.train_y.cpu().numpy(), engine.test_y
    out: dict = {"targets": len(test), "features": list(train.shape)}
    sample = np.random.default_rng(0).choice(len(test), n_reference, replace=False)
    # cuML fits one target at a time: all 10,000 would outlast a part's limit, so it is timed on
    # a sample of targets and its full time extrapolated
    cuml_sample = np.random.default_rng(1).choice(len(test), min(len(test), n_cuml), replace=False)
    todo = {"torch": np.arange(len(test))}
    if cuml_available():
        todo["cuml"] = np.union1d(sample, cuml_sample)
    ranks = {}
    for backend, ids in todo.items():
        svm = ExemplarSVM(backend=backend)
        start = time.perf_counter()
        full = np.zeros((len(test), 100), dtype=np.int64)
        full[ids] = rank(svm, train, train_y, test[ids], test_y[ids], ids, 100,
                         device=engine.train_x.device)
        ranks[backend] = full
        _sync()
        out[f"{backend}_seconds"] = time.perf_counter() - start
        if backend == "cuml":
            out["cuml_targets_timed"] = len(ids)
            out["cuml_seconds_all_targets_estimated"] = out["cuml_seconds"] / len(ids) * len(test)
            out["cuml_not_converged"] = int(svm.not_converged)
    start = time.perf_counter()
    ref_rank = rank(ExemplarSVM(backend="sklearn"), train, train_y, test[sample], test_y[sample],
                    sample, 100)
    out["sklearn_seconds_per_target"] = (time.perf_counter() - start) / n_reference
    for backend, r in ranks.items():
        overlap = [len(set(a) & set(b)) / 100 for a, b in zip(ref_rank, r[sample])]
        out[f"{backend}_top100_overlap_mean"] = float(np.mean(overlap))
        out[f"{backend}_top100_overlap_min"] = float(np.min(overlap))
    if not cuml_available():
        out["cuml"] = "not importable here (pip install -e '.[gpu]')"
    return out


def pretrain_views(ctx: Context) -> tuple[dict, str]:
    """Images/s of one MoCo ResNet-18 epoch: batched views on the device against lightly's
    per-image views in 8 DataLoader workers (each pretraining timed fresh, in its own cache)."""
    from brittle.api import load_data, pretrain
    from brittle.runtime.cache import StageCache
    base = ctx.cifar_base()
    sizes = ["backbone.batch_size=16", "backbone.net.width=0.25"] if ctx.smoke else \
        ["backbone.batch_size=512"]
    data = load_data(compose_cfg(base))   # decoded once, in the shared cache
    out = {}
    for where, workers in (("device", 0), ("dataloader", 1 if ctx.smoke else 8)):
        with tempfile.TemporaryDirectory() as cache:
            over = [*base, "backbone=moco_r18", "backbone.epochs=1", "backbone.knn_every=0",
                    f"backbone.augment_on={where}", f"backbone.num_workers={workers}",
                    "progress=false", f"cache_dir={cache}", *sizes]
            if torch.cuda.is_available():
                over.append("backbone.precision=fp16")
            seconds = float(StageCache.meta(pretrain(compose_cfg(over), data))["seconds"])
        out[f"{where}_images_per_second"] = len(data.train) / seconds
    out["speedup"] = out["device_images_per_second"] / out["dataloader_images_per_second"]
    return out, (f"MoCo ResNet-18 epoch: device views {out['device_images_per_second']:,.0f} "
                 f"images/s, DataLoader views {out['dataloader_images_per_second']:,.0f} "
                 f"({out['speedup']:.2f}x)")
