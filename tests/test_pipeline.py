"""A tiny real run on digits: the output contract, the stage cache, resume, and determinism."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from brittle.pipeline import run
from tests.helpers import TINY, make_cfg


def test_contract_files(tiny_run):
    base, cfg, summary = tiny_run
    run_dir = base / "run"
    for name in ("summary.json", "support.parquet", "tests.parquet", "topk.npy", "targets.npy",
                 "cdf.png"):
        assert (run_dir / name).exists(), name
    on_disk = json.loads((run_dir / "summary.json").read_text())
    for key in ("auc", "n_targets", "n_flipped", "max_support", "cdf"):
        assert key in on_disk
    assert on_disk["n_targets"] == 2 and on_disk["max_support"] == 16 and 0 <= on_disk["auc"] <= 1
    topk, targets = np.load(run_dir / "topk.npy"), np.load(run_dir / "targets.npy")
    assert topk.dtype == np.int64 and topk.shape == (2, 16) and targets.shape == (2,)
    support = pd.read_parquet(run_dir / "support.parquet")
    assert list(support.columns) == ["target", "label", "support", "n_models"]
    assert support["target"].tolist() == targets.tolist()
    tests = pd.read_parquet(run_dir / "tests.parquet")
    assert {"target", "k", "seed", "correct", "margin"} <= set(tests.columns)
    assert len(tests) == support["n_models"].sum()
    # a flipped test means the majority of its models misclassify: margins agree with `correct`
    assert ((tests["margin"] > 0) == tests["correct"]).all()
    # found supports are consistent with the logged tests of that target
    for row in support.itertuples():
        t = tests[tests.target == row.target]
        if row.support >= 0:
            assert t[t.k == row.support]["correct"].mean() <= 0.5


def test_second_run_hits_every_cache_and_retrains_nothing(tiny_run, caplog):
    base, cfg, summary = tiny_run
    caplog.set_level("INFO")
    again = run(cfg, base / "run")
    assert again.models_trained_this_run == 0
    assert "computing" not in caplog.text and "cache hit: pretrain" in caplog.text
    assert again.auc == summary.auc
    # a new run directory with a different scorer reuses pretraining, embedding and references
    caplog.clear()
    run(make_cfg(TINY + ["scorer=l2"], cache_dir=base / "cache"), base / "run_l2")
    assert "computing pretrain" not in caplog.text and "computing reference" not in caplog.text


def test_a_run_states_its_most_models_and_their_time_before_training(tiny_run, caplog):
    """TINY: 2 targets x 3 tests (bisection budget 2) x 2 models; the reference models are cached
    by the first run, and its seconds per model (cache/timings.json) give the time up front."""
    base, _, _ = tiny_run
    record = json.loads((base / "cache" / "timings.json").read_text())
    (key, timed), = record.items()
    assert key.endswith("@cpu") and timed["models"] >= 3 and timed["seconds_per_model"] > 0
    caplog.set_level("INFO")
    summary = run(make_cfg(TINY + ["scorer=random"], cache_dir=base / "cache"), base / "run_random")
    plan = next(r.getMessage() for r in caplog.records if "models to train" in r.getMessage())
    assert plan.startswith("at most 12 models to train (search 2 targets x 3 tests x 2 = 12); ~ ")
    assert plan.endswith(" at the seconds per model measured on this device before")
    assert 0 < summary.models_trained_this_run <= 12
    assert "first " in caplog.text and "models ~ " in caplog.text   # refined by the first models


def test_same_seed_gives_identical_tables(tiny_run, tmp_path):
    base, _, _ = tiny_run
    cfg = make_cfg(TINY, cache_dir=tmp_path / "cache")  # fresh cache: everything recomputed
    run(cfg, tmp_path / "run")
    for name in ("support.parquet", "tests.parquet"):
        a = pd.read_parquet(base / "run" / name).drop(columns=["seconds"], errors="ignore")
        b = pd.read_parquet(tmp_path / "run" / name).drop(columns=["seconds"], errors="ignore")
        pd.testing.assert_frame_equal(a, b)
    assert np.array_equal(np.load(base / "run" / "topk.npy"),
                          np.load(tmp_path / "run" / "topk.npy"))


def test_mislabel_records_flip_class(tiny_run):
    base, _, _ = tiny_run
    cfg = make_cfg(TINY + ["task=mislabel", "scorer=random"], cache_dir=base / "cache")
    summary = run(cfg, base / "run_mislabel")
    support = pd.read_parquet(base / "run_mislabel" / "support.parquet")
    assert "flip_class" in support.columns and (support["flip_class"] != support["label"]).all()
    assert summary.task == "mislabel"


def test_esvm_backends_on_real_moco_embeddings(tiny_run):
    """The reference recipe and the torch solver on the run's own MoCo digits embeddings."""
    from sklearn.svm import LinearSVC

    from brittle.api import rank
    from brittle.data.datasets import load_digits
    from brittle.scorers.esvm.scorer import ExemplarSVM
    base, _, _ = tiny_run
    emb = next(p for p in (base / "cache" / "embed").iterdir() if (p / "meta.json").exists())
    train, test = np.load(emb / "train.npy"), np.load(emb / "test.npy")
    data = load_digits()
    q = np.array([0, 50, 100, 150, 200, 250, 300, 350])
    ref = rank(ExemplarSVM(backend="sklearn"), train, data.train.labels, test[q],
               data.test.labels[q], q, 50)
    for t, i in enumerate(q):
        same = np.flatnonzero(data.train.labels == data.test.labels[i])
        x = np.concatenate([test[i][None], train[same]])
        y = np.r_[1, np.zeros(len(same))]
        clf = LinearSVC(C=0.1, class_weight="balanced", loss="squared_hinge", max_iter=10000,
                        tol=1e-6, dual=True, random_state=0).fit(x, y)
        assert np.array_equal(ref[t], same[np.argsort(-clf.decision_function(train[same]),
                                                      kind="stable")[:50]])
    fast = rank(ExemplarSVM(backend="torch"), train, data.train.labels, test[q],
                data.test.labels[q], q, 50)
    overlap = [len(set(a) & set(b)) / 50 for a, b in zip(ref, fast)]
    assert np.mean(overlap) >= 0.99 and min(overlap) >= 0.96


def test_checked_supports_are_recorded_in_every_output(tiny_run, caplog):
    """search.verify and search.refine_budget on the TINY run: the plan counts the checks'
    models up front, and the table, support.parquet, checks.parquet, refined.json and
    summary.json carry what they found; the checks' models stay within the plan."""
    base, _, first = tiny_run
    caplog.set_level("INFO")
    cfg = make_cfg(TINY + ["search.verify=3", "search.refine_budget=2"], cache_dir=base / "cache")
    out = base / "run_checked"
    summary = run(cfg, out)
    plan = next(r.getMessage() for r in caplog.records if "models to train" in r.getMessage())
    assert "checks 2 targets x (3 + 2 x (2 + 3)) = 26" in plan
    support = pd.read_parquet(out / "support.parquet")
    assert {"verified_flip_rate", "holds", "refined_support", "check_models"} <= set(support)
    checks = pd.read_parquet(out / "checks.parquet")
    assert set(checks["phase"]) <= {"verify", "refine", "refine_verify"}
    assert len(checks) == support["check_models"].sum() <= 26
    found = support[support["support"] >= 0]
    assert (found["verified_flip_rate"].notna()).all() and len(checks[checks.phase == "verify"]) \
        == 3 * len(found)
    record = json.loads((out / "summary.json").read_text())["checks"]
    assert record["n_found"] == len(found) and record["n_hold"] == int(support["holds"].sum())
    assert summary.auc == first.auc   # the same search: checks change no prefix support
    refined = json.loads((out / "refined.json").read_text())
    for row in support[support["holds"]].itertuples():
        assert len(refined[str(row.target)]["indices"]) == row.refined_support <= row.support
