"""GPU check (`make gpu-check`): the figures the retraining and scoring issues ask of a GPU, in
one prepared script. On full CIFAR-10 ($BRITTLE_CIFAR10, or the development copy beside the checkout):

1. trainer=fast, arch=airnet: seconds per model and TTA test accuracy over a few seeds
   (target: >= 93% in <= 5 s per model);
2. trainer=paper, arch=resnet9: one model's seconds and test accuracy (target: >= 92%);
3. ESVM scoring of all 10,000 test images against their 5,000 same-class training features
   (penultimate features of that ResNet-9): torch backend on the GPU; cuML when importable, timed
   on 200 targets and extrapolated; top-100 overlap with the scikit-learn reference on a sample;
4. pretraining throughput: images/s of one MoCo ResNet-18 epoch with batched device
   augmentation against lightly's per-image views in 8 DataLoader workers.

Prints one line per figure and writes them to gpu_check.json (in $OUT when set). `--smoke` runs
the same code at a toy size (any device) to check the script itself.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brittle.api import build_engine, load_data, rank  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.retrain.engine import Engine  # noqa: E402
from brittle.scorers.esvm.scorer import ExemplarSVM, cuml_available  # noqa: E402


def compose_cfg(overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def engine_for(overrides: list[str]) -> Engine:
    cfg = compose_cfg(overrides)
    return build_engine(cfg, load_data(cfg))


def timed_models(engine: Engine, seeds: list[int]) -> tuple[list[float], list[float], torch.nn.Module]:
    """Seconds and test accuracy per seed (after one untimed warm-up model)."""
    engine.train(engine.full_keep(), engine.train_y, seed=10_000)     # cudnn autotuning, allocator
    seconds, accs, model = [], [], None
    for seed in seeds:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        model = engine.train(engine.full_keep(), engine.train_y, seed)
        pred = engine.logits(model, engine.test_x).argmax(1).cpu().numpy()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        accs.append(float((pred == engine.test_y).mean()))
    return seconds, accs, model


@torch.no_grad()
def penultimate(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """ResNet-9 features before its linear head, float32 [M, 8 * width]."""
    body = torch.nn.Sequential(*list(model)[:-2])
    return torch.cat([body(part).float() for part in x.split(1000)]).cpu().numpy()


def esvm_figures(model, engine: Engine, n_reference: int, n_cuml: int) -> dict:
    train, test = penultimate(model, engine.train_x), penultimate(model, engine.test_x)
    train_y, test_y = engine.train_y.cpu().numpy(), engine.test_y
    out: dict = {"targets": len(test), "features": list(train.shape)}
    sample = np.random.default_rng(0).choice(len(test), n_reference, replace=False)
    # cuML fits one target at a time: all 10,000 would outlast a 10-minute call, so it is timed
    # on a sample of targets and its full time extrapolated
    cuml_sample = np.random.default_rng(1).choice(len(test), min(len(test), n_cuml), replace=False)
    todo = {"torch": np.arange(len(test)), **({"cuml": np.union1d(sample, cuml_sample)} if cuml_available() else {})}
    ranks = {}
    for backend, ids in todo.items():
        svm = ExemplarSVM(backend=backend)
        start = time.perf_counter()
        full = np.zeros((len(test), 100), dtype=np.int64)
        full[ids] = rank(svm, train, train_y, test[ids], test_y[ids], ids, 100, device=engine.train_x.device)
        ranks[backend] = full
        if engine.train_x.is_cuda:
            torch.cuda.synchronize(engine.train_x.device)
        out[f"{backend}_seconds"] = time.perf_counter() - start
        if backend == "cuml":
            out["cuml_targets_timed"] = len(ids)
            out["cuml_seconds_all_targets_estimated"] = out["cuml_seconds"] / len(ids) * len(test)
            out["cuml_not_converged"] = int(svm.not_converged)
    ref = ExemplarSVM(backend="sklearn")
    start = time.perf_counter()
    ref_rank = rank(ref, train, train_y, test[sample], test_y[sample], sample, 100)
    out["sklearn_seconds_per_target"] = (time.perf_counter() - start) / n_reference
    for backend, r in ranks.items():
        overlap = [len(set(a) & set(b)) / 100 for a, b in zip(ref_rank, r[sample])]
        out[f"{backend}_top100_overlap_mean"] = float(np.mean(overlap))
        out[f"{backend}_top100_overlap_min"] = float(np.min(overlap))
    if not cuml_available():
        out["cuml"] = "not importable here (pip install -e '.[gpu]')"
    return out


def pretrain_throughput(base: list[str], smoke: bool) -> dict:
    """Images/s of one MoCo ResNet-18 epoch on the training set: batched views on the device
    (backbone.augment_on=device) against lightly's per-image views in 8 DataLoader workers."""
    import tempfile

    from brittle.api import pretrain
    from brittle.runtime.cache import StageCache
    out = {}
    sizes = ["backbone.batch_size=16", "dataset.train_subset=20"] if smoke else ["backbone.batch_size=512"]
    # the decoded images come from the run's cache (decoded once); each pretraining is timed fresh
    data = load_data(compose_cfg([*base, *sizes]))
    for where, workers in (("device", 0), ("dataloader", 1 if smoke else 8)):
        with tempfile.TemporaryDirectory() as cache:
            over = [*base, "backbone=moco_r18", "backbone.epochs=1", "backbone.knn_every=0",
                    f"backbone.augment_on={where}", f"backbone.num_workers={workers}", "progress=false",
                    f"cache_dir={cache}", *sizes]
            if torch.cuda.is_available():
                over.append("backbone.precision=16-mixed")
            cfg = compose_cfg(over)
            seconds = float(StageCache.meta(pretrain(cfg, data))["seconds"])
        out[f"{where}_images_per_second"] = len(data.train) / seconds
    out["speedup"] = out["device_images_per_second"] / out["dataloader_images_per_second"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes: checks the script, not the GPU")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    data = os.environ.get("BRITTLE_CIFAR10", str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    if not Path(data).exists():
        sys.exit(f"error: CIFAR-10 not found at {data}; set BRITTLE_CIFAR10 to the class-folder tarball")
    base = ["dataset=cifar10", f"dataset.root={data}"]
    fast, paper = ["arch=airnet", "trainer=fast"], ["arch=resnet9", "trainer=paper"]
    if not torch.cuda.is_available():   # the paper recipe's fp16 is a GPU precision
        paper += ["trainer.recipe.precision=fp32"]
    if args.smoke:
        base += ["dataset.train_subset=600", "dataset.test_subset=200"]
        fast += ["trainer.epochs=1", "trainer.batch_size=100", "arch.model.width=8"]
        paper += ["trainer.recipe.epochs=1", "trainer.recipe.batch_size=100", "arch.model.width=8"]
    report: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    out_file = Path(os.environ.get("OUT", ".")) / "gpu_check.json"

    def record(part: str, figures: dict, line: str) -> None:
        """Print a part's line and rewrite the JSON: a run cut short keeps what it measured."""
        report[part] = figures
        print(line, flush=True)
        out_file.write_text(json.dumps(report, indent=2))

    seconds, accs, _ = timed_models(engine_for(base + fast), list(range(args.seeds)))
    record("fast", {"seconds": seconds, "test_accuracy": accs},
           f"fast  (airnet): {np.mean(seconds):.2f} s/model, test acc {np.mean(accs):.4f} "
           f"(min {np.min(accs):.4f}) over {len(accs)} seeds")
    engine = engine_for(base + paper)
    seconds, accs, model = timed_models(engine, [0])
    record("paper", {"seconds": seconds, "test_accuracy": accs},
           f"paper (resnet9): {seconds[0]:.1f} s/model, test acc {accs[0]:.4f}")
    esvm = esvm_figures(model, engine, n_reference=5 if args.smoke else 50, n_cuml=5 if args.smoke else 200)
    record("esvm", esvm, "esvm: " + json.dumps(esvm))
    pre = pretrain_throughput(base, args.smoke)
    record("pretrain", pre, "pretrain (MoCo ResNet-18, one epoch): " + json.dumps(pre))


if __name__ == "__main__":
    main()
