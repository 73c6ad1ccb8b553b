"""Reliability: each bad input gets a clear error; kill -9 then rerun resumes; failed writes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from brittle.data.datasets import Dataset, ImageSet
from brittle.pipeline import run
from brittle.runtime import files as artifacts
from brittle.runtime.errors import BrittleError
from brittle.scorers.esvm.scorer import ExemplarSVM, cuml_available
from brittle.ssl.checkpoints import load_backbone_weights
from brittle.ssl.networks import resnet18_cifar, small_cnn
from brittle.stages.targets import select_targets
from tests.helpers import ROOT, TINY, make_cfg, run_brittle


def test_checkpoint_of_another_architecture(tmp_path):
    path = tmp_path / "small.pt"
    torch.save(small_cnn(3).state_dict(), path)
    with pytest.raises(BrittleError, match=r"does not fit backbone .* missing keys"):
        load_backbone_weights(resnet18_cifar(3), path)
    torch.save(small_cnn(1, width=16).state_dict(), path)
    with pytest.raises(BrittleError, match="shape mismatches"):
        load_backbone_weights(small_cnn(1, width=32), path)


@pytest.mark.skipif(cuml_available(), reason="cuML and a GPU are present")
def test_cuml_backend_without_cuml_or_gpu():
    with pytest.raises(BrittleError, match="scorer.backend=cuml needs cuML and a CUDA GPU"):
        ExemplarSVM(backend="cuml")


def test_unknown_backend():
    with pytest.raises(BrittleError, match=r"scorer.backend=svmlight is not valid; use one of"):
        ExemplarSVM(backend="svmlight")


@pytest.mark.parametrize("override,needle", [
    ("targets.n=0", "targets.n=0 is out of range; use 1.."),
    ("targets.n=100000", "targets.n=100000 is out of range"),
    ("targets.indices=[3,360]", "targets.indices contains 360, outside the test set; valid "
                                "indices are 0..359"),
])
def test_target_settings_out_of_range(override, needle):
    cfg = make_cfg([override])
    labels = np.repeat(np.arange(10), 36)
    probs = np.eye(10)[labels]
    with pytest.raises(BrittleError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        select_targets(cfg.targets, _test_only(labels), probs)


def _test_only(labels: np.ndarray) -> Dataset:
    images = ImageSet(np.zeros((len(labels), 1, 2, 2), np.uint8), labels,
                      [str(c) for c in range(10)])
    return Dataset("synthetic", images, images)


def test_nan_embeddings_are_refused(tmp_path):
    cache = tmp_path / "cache"
    cfg = make_cfg(TINY, cache_dir=cache)
    run(cfg, tmp_path / "ok")
    emb_dir = next((cache / "embed").glob("[0-9a-f]*[0-9a-f]"))
    train = np.load(emb_dir / "train.npy")
    train[5, 3] = np.nan
    np.save(emb_dir / "train.npy", train)
    with pytest.raises(BrittleError, match="train features contain NaN or inf in 1 rows"):
        run(cfg, tmp_path / "bad")
    assert not (tmp_path / "bad" / "topk.npy").exists()


def test_disk_full_while_writing_keeps_previous_state(tmp_path, monkeypatch):
    cfg = make_cfg(TINY, cache_dir=tmp_path / "cache")
    run(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "support.parquet").read_bytes()
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith("support.parquet"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "support.parquet").read_bytes() == before
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(artifacts.os, "replace", real_replace)
    assert run(cfg, tmp_path / "run").models_trained_this_run == 0


def _cli(tmp_path, name):
    return [sys.executable, "run.py", f"hydra.run.dir={tmp_path}/{name}",
            f"cache_dir={tmp_path}/cache", *TINY, "arch.recipe.epochs=15", "targets.n=3"]


@pytest.mark.heavy
def test_kill_9_mid_search_then_rerun_retrains_nothing_finished(tmp_path):
    log = tmp_path / "run" / "tests.jsonl"
    proc = subprocess.Popen(_cli(tmp_path, "run"), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 5:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert 5 <= len(before) < 18  # 3 targets x 3 tests x 2 models when uninterrupted
    # the same command again, as its own process
    done = run_brittle(_cli(tmp_path, "run")[2:], ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    after = [json.loads(line) for line in log.read_text().splitlines()]
    keys = [(r["target"], r["k"], r["rep"]) for r in after]
    assert len(keys) == len(set(keys))  # nothing trained twice
    assert after[: len(before)] == before  # finished work kept as it was
    # and the tables equal those of an uninterrupted run with the same seeds
    clean = run_brittle(_cli(tmp_path, "clean")[2:], ROOT)
    assert clean.returncode == 0, clean.stderr[-2000:]
    for name in ("support.parquet", "tests.parquet"):
        a = pd.read_parquet(tmp_path / "run" / name).drop(columns="seconds", errors="ignore")
        b = pd.read_parquet(tmp_path / "clean" / name).drop(columns="seconds", errors="ignore")
        pd.testing.assert_frame_equal(a, b)


def test_kill_9_during_pretraining_leaves_no_half_artifact(tmp_path):
    proc = subprocess.Popen(_cli(tmp_path, "run")[:-3] + ["backbone.epochs=30"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    pre = tmp_path / "cache" / "pretrain"
    deadline = time.time() + 120
    while time.time() < deadline and not (pre.exists() and any(pre.glob(".*"))):
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not [p for p in pre.iterdir() if not p.name.startswith(".")
                and not p.name.endswith(".lock")]
    cfg = make_cfg(TINY, cache_dir=tmp_path / "cache")  # the next run recomputes and cleans up
    run(cfg, tmp_path / "again")
    assert not list(pre.glob(".*"))


def test_trak_without_traker_installed(monkeypatch):
    from brittle.scorers.trak import Trak
    monkeypatch.setitem(sys.modules, "trak", None)  # import trak -> ImportError
    with pytest.raises(BrittleError,
                       match=r"scorer=trak needs the traker package, brittle's trak extra: "
                                           r"pip install 'brittle\[trak\]'"):
        Trak()


def test_bad_shard_settings():
    cfg = make_cfg(["targets.shard=3", "targets.num_shards=2"])
    labels = np.repeat(np.arange(10), 36)
    with pytest.raises(BrittleError,
                       match="targets.shard=3 with targets.num_shards=2 is out of range"):
        select_targets(cfg.targets, _test_only(labels), np.eye(10)[labels])
