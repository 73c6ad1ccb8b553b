"""Atomic writes, the content-addressed stage cache, and run-directory binding."""
from __future__ import annotations

import numpy as np
import pytest

from brittle.runtime.cache import StageCache
from brittle.runtime.errors import BrittleError
from brittle.runtime.files import atomic_path, check_run_dir, save_json, save_npy


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.npy"
    save_npy(path, np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("disk full")
    assert np.array_equal(np.load(path), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_cache_computes_once_and_checks_its_record(tmp_path):
    cache = StageCache(tmp_path)
    calls = []

    def compute(d):
        calls.append(d)
        (d / "x.txt").write_text("hi")
        return {"seconds": 1.0}

    a = cache.get_or_compute("stage", {"lr": 0.1}, compute)
    b = cache.get_or_compute("stage", {"lr": 0.1}, compute)
    assert a == b and len(calls) == 1 and (a / "x.txt").read_text() == "hi"
    c = cache.get_or_compute("stage", {"lr": 0.2}, compute)
    assert c != a and len(calls) == 2
    # a record that disagrees with its key (tampered or colliding) is an error, never reused
    meta = StageCache.meta(a)
    meta["spec"] = {"lr": 0.3}
    save_json(a / "meta.json", meta)
    with pytest.raises(BrittleError, match="different config"):
        cache.get_or_compute("stage", {"lr": 0.1}, compute)


def test_failed_compute_leaves_nothing(tmp_path):
    cache = StageCache(tmp_path)

    def boom(d):
        (d / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("stage", {"a": 1}, boom)
    assert cache.lookup("stage", {"a": 1}) is None
    assert [p.name for p in (tmp_path / "stage").iterdir() if not p.name.endswith(".lock")] == []


def test_run_dir_is_bound_to_its_config(tmp_path):
    check_run_dir(tmp_path, {"seed": 0})
    check_run_dir(tmp_path, {"seed": 0})  # resume: same config is fine
    with pytest.raises(BrittleError, match="different config"):
        check_run_dir(tmp_path, {"seed": 1})
