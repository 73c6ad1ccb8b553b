"""Paper-faithful protocols and numbers: baseline pools, the reference code's ResNet-9, resumable
targets, dataset orderings, medians over all targets, solver convergence, uncertainty."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from brittle.counterfactual.metrics import median_support, support_auc
from brittle.data.datasets import Dataset, ImageSet
from brittle.eval.stats import bootstrap_ci, paired_sign_test
from brittle.pipeline import run
from brittle.retrain.arches import ResNet9FFCV
from brittle.runtime.errors import BrittleError
from brittle.scorers.base import TargetSet, TrainSet
from brittle.scorers.esvm.scorer import ExemplarSVM
from brittle.stages.targets import select_targets
from tests.helpers import TINY, make_cfg


@pytest.mark.parametrize("scorer,label", [("trak", "TRAK d=512"), ("datamodels", "Datamodels")])
def test_baselines_default_to_the_papers_pool_of_all_images(scorer, label):
    pytest.importorskip("trak")
    default = instantiate(make_cfg([f"scorer={scorer}"]).scorer)
    assert default.pool == "all" and default.display_name("MoCo") == label
    same = instantiate(make_cfg([f"scorer={scorer}", "scorer.pool=same_class"]).scorer)
    assert same.display_name("MoCo") == f"{label} (pool same_class)"
    esvm = instantiate(make_cfg([]).scorer)
    assert esvm.display_name("MoCo") == "ESVM MoCo"
    all_classes = instantiate(make_cfg(["scorer.pool=all"]).scorer)
    assert all_classes.display_name("MoCo") == "ESVM MoCo (pool all)"


def _conv_bn_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + 2 * cout  # bias-free conv + BatchNorm scale and shift


def test_resnet9_ffcv_is_the_reference_codes_network():
    # models/resnet.py of the reference code: 64, 128 (5x5/2), res 128, 256, pool, res 256, 128,
    # head 128
    expected = (_conv_bn_params(3, 64, 3) + _conv_bn_params(64, 128, 5) + 2
                * _conv_bn_params(128, 128, 3)
                + _conv_bn_params(128, 256, 3) + 2 * _conv_bn_params(256, 256, 3)
                + _conv_bn_params(256, 128, 3) + 128 * 10)
    net = ResNet9FFCV([3, 32, 32], 10)
    assert sum(p.numel() for p in net.parameters()) == expected
    x = torch.randn(2, 3, 32, 32)
    assert net(x).shape == (2, 10)
    assert isinstance(net[-1], torch.nn.Module) and net[-1].factor == 0.2
    cfg = make_cfg(["experiment=paper_cifar10", "dataset.root=/data/cifar10"])
    assert cfg.arch.model._target_.endswith("ResNet9FFCV") and cfg.arch.recipe.epochs == 24
    assert make_cfg(["arch=resnet9"]).arch.model._target_.endswith(".ResNet9")


def _dataset(labels: np.ndarray, ordering: str) -> Dataset:
    images = ImageSet(np.zeros((len(labels), 1, 2, 2), np.uint8), labels,
                      [str(c) for c in range(10)])
    return Dataset("synthetic", images, images, ordering)


def test_explicit_indices_refuse_a_dataset_in_another_order():
    labels = np.repeat(np.arange(10), 5)
    cfg = make_cfg(["targets.indices=[1,2,3]"])
    assert list(select_targets(cfg.targets, _dataset(labels, "official"),
                               np.eye(10)[labels])) == [1, 2, 3]
    with pytest.raises(BrittleError, match="targets.indices are in the official order, but dataset "
                                           "synthetic was loaded in the class-folder order"):
        select_targets(cfg.targets, _dataset(labels, "class-folder"), np.eye(10)[labels])
    ok = make_cfg(["targets.indices=[1,2,3]", "targets.indices_ordering=class-folder"])
    assert len(select_targets(ok.targets, _dataset(labels, "class-folder"),
                              np.eye(10)[labels])) == 3


def test_cifar_class_folders_record_their_order(cifar_tgz, cifar_cache):
    from brittle.data.cifar10 import load_cifar10
    data = load_cifar10(str(cifar_tgz), str(cifar_cache), train_subset=100, test_subset=20)
    assert data.ordering == "class-folder"


def test_rerun_on_another_device_reuses_the_run(tiny_run):
    base, _, first = tiny_run
    again = run(make_cfg([*TINY, "device=cpu", "progress=true"], cache_dir=base / "cache"),
                base / "run")
    assert again.models_trained_this_run == 0 and again.auc == first.auc


def test_recorded_targets_are_read_back_and_a_disagreement_refused(tiny_run, tmp_path):
    import shutil
    base, cfg, first = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(base / "run", copy)
    shutil.rmtree(base / "cache" / "reference")  # rebuilt deterministically on a CPU
    assert run(cfg, copy).models_trained_this_run == 0
    ids = np.load(copy / "targets.npy")
    np.save(copy / "targets.npy", ids[::-1].copy() + 1)
    with pytest.raises(BrittleError,
                       match="was made with other targets or flip classes than the reference"):
        run(cfg, copy)


def test_summary_reports_median_over_all_targets_and_intervals(tiny_run):
    base, _, summary = tiny_run
    record = json.loads((base / "run" / "summary.json").read_text())
    for key in ("auc_ci", "fraction_flipped", "fraction_flipped_ci", "median_support", "names"):
        assert key in record, key
    assert record["names"] == {"method": "ESVM MoCo", "backbone": "MoCo", "task": "remove",
                                "arch": "mlp", "trainer": "arch_recipe", "dataset": "digits",
                                "source": None}
    assert record["score_cost"]["not_converged"] == 0


def test_median_counts_targets_that_never_flipped():
    assert median_support(np.array([5, 7, -1, -1, -1, -1, -1, -1, -1, -1]), 128) == ">128"
    assert median_support(np.array([50] * 10), 128) == 50.0
    assert median_support(np.array([5, 9, -1]), 128) == 9.0  # 5, 9, >K: the middle is 9
    assert median_support(np.array([5, -1]), 128) == ">128"


def test_paired_sign_test_matches_the_binomial_formula():
    a = np.array([1, 2, 3, 4, 5, 6, 7, 8, -1, 10])
    b = np.array([2, 3, 4, 5, 6, 7, 8, 9, 10, 10])
    res = paired_sign_test(a, b, 128)
    assert (res["smaller"], res["equal"], res["larger"]) == (8, 1, 1)
    n, k = 9, 1   # two-sided exact p of 1 success in 9 fair trials
    p = 2 * sum(math.comb(n, i) for i in range(0, k + 1)) / 2 ** n
    assert res["p_value"] == pytest.approx(p)


def test_bootstrap_interval_covers_and_tightens():
    rng = np.random.default_rng(0)
    wide = bootstrap_ci(rng.integers(-1, 128, 10), lambda s: support_auc(s, 128))
    narrow = bootstrap_ci(rng.integers(-1, 128, 400), lambda s: support_auc(s, 128))
    assert wide[0] < wide[1] and narrow[1] - narrow[0] < (wide[1] - wide[0]) / 3
    from scipy.stats import bootstrap
    x = rng.normal(size=200)
    ref = bootstrap((x,), np.mean, method="percentile", random_state=1).confidence_interval
    ours = bootstrap_ci(x, np.mean)
    assert ours == pytest.approx((ref.low, ref.high), abs=0.03)


def test_unconverged_torch_solve_is_redone_exactly(monkeypatch):
    import brittle.scorers.esvm.newton as et
    rng = np.random.default_rng(0)
    train = rng.normal(size=(120, 8)).astype(np.float32)
    labels = np.zeros(120, np.int64)
    q = TargetSet(np.arange(2), np.zeros(2, np.int64), rng.normal(size=(2, 8)).astype(np.float32))
    real = et.exemplar_svm_weights

    def first_fails(*args, **kwargs):
        w, ok = real(*args, **kwargs)
        ok[0] = False
        return w * 0, ok   # a garbage iterate for every target; only target 0 is flagged
    monkeypatch.setattr(et, "exemplar_svm_weights", first_fails)
    svm, ref = ExemplarSVM(backend="torch"), ExemplarSVM(backend="sklearn")
    for s in (svm, ref):
        s.prepare(TrainSet(labels, train), None, torch.device("cpu"))
    got, want = svm.scores(q), ref.scores(q)
    assert svm.fallbacks == 1
    assert np.allclose(got[0], want[0])
    assert ExemplarSVM(backend="auto").backend == "torch"  # cuML only when asked for


def test_targets_needed_is_the_paired_normal_approximation():
    from scipy.stats import norm

    from brittle.eval.stats import targets_needed
    a = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.0, 1.0, 0.2])
    b = np.zeros(8)
    sd = np.std(a, ddof=1)
    want = math.ceil(((norm.ppf(0.975) + norm.ppf(0.8)) * sd / 0.1) ** 2)
    assert targets_needed(a, b, 0.1) == want
    assert targets_needed(a, b, 0.05) > 3.9 * targets_needed(a, b, 0.1)  # n grows as 1/difference^2
