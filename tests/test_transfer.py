"""Scores transferred across architectures (the paper's section 4.4): with `arch@source_arch=...`
a model-based scorer's models and the reference models are of the source arch, so every arch of
a sweep searches the same targets (and flip classes) with the same scores, and labels say where
the scores came from."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TINY, run_brittle


def _jobs(root: Path) -> dict[str, Path]:
    return {",".join(sorted(p for p in d.name.split(",")
                            if p.split("=")[0] in ("arch", "scorer"))): d
            for d in root.iterdir() if (d / "summary.json").exists()}


@pytest.mark.heavy
def test_a_sweep_over_archs_shares_targets_flips_and_transferred_scores(tmp_path):
    p = run_brittle(["-m", "arch=mlp,cnn", "scorer=esvm,trak", "arch@source_arch=mlp",
                     "task=mislabel", "trak_sizes.n_models=2", *TINY, "progress=false",
                     f"cache_dir={tmp_path}/cache", f"hydra.sweep.dir={tmp_path}/sweep"],
                    env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    jobs = _jobs(tmp_path / "sweep")
    assert sorted(jobs) == ["arch=cnn,scorer=esvm", "arch=cnn,scorer=trak", "arch=mlp,scorer=esvm",
                            "arch=mlp,scorer=trak"]
    first = next(iter(jobs.values()))
    for run in jobs.values():
        for name in ("targets.npy", "flips.npy"):
            assert np.array_equal(np.load(run / name), np.load(first / name)), (run.name, name)
    # TRAK's scores come from MLPs in both jobs: the same ranking on the CNN's row as on the MLP's
    assert np.array_equal(np.load(jobs["arch=cnn,scorer=trak"] / "topk.npy"),
                          np.load(jobs["arch=mlp,scorer=trak"] / "topk.npy"))
    assert len(list((tmp_path / "cache" / "models").glob("*.lock"))) == 1   # trained once, for both
    labels = {k: json.loads((d / "summary.json").read_text())["names"] for k, d in jobs.items()}
    assert (labels["arch=cnn,scorer=trak"]["source"] == "mlp"
            and labels["arch=cnn,scorer=trak"]["arch"] == "cnn")
    # ESVM uses no models: nothing transferred
    assert labels["arch=cnn,scorer=esvm"]["source"] is None

    from brittle.report.aggregate import aggregate
    summary, _ = aggregate([tmp_path / "sweep"])
    trak = summary.loc[summary["scorer"] == "TRAK d=512", "method"]
    assert sorted(trak) == ["TRAK d=512 (2, mlp)"] * 2


def test_paper_presets_take_random_targets_from_one_source_arch():
    """CIFAR-10 protocol: 100 random test images, and the reference models of the reference code's
    ResNet-9 whatever arch the search retrains (so a sweep over arch keeps targets and flips)."""
    from tests.helpers import make_cfg
    for preset in ("paper_cifar10", "paper_transfer"):
        for arch in ("resnet9_ffcv", "mobilenetv2"):
            cfg = make_cfg([f"experiment={preset}", "dataset.root=/data/cifar10", f"arch={arch}"])
            assert cfg.targets.only_correct is False and cfg.targets.n == 100
            assert cfg.source_arch.name == "resnet9_ffcv" and cfg.arch.name == arch
