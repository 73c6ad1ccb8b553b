"""Shared fixtures (helpers live in tests/helpers.py): one tiny default run, the CIFAR-10
archive."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test workers on two cores: one thread each (here and in the processes tests start), as
    # OpenMP threads spinning against another process's cost more than they bring
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)

from tests.helpers import CIFAR_TGZ, TINY, make_cfg


def pytest_collection_modifyitems(config, items):
    """`heavy` tests first (in their order): with two workers, the long ones start early instead of
    one worker finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One TINY default run shared by the tests that read its outputs: (base, cfg, summary);
    its cache is `base / "cache"`, its run directory `base / "run"`."""
    from brittle.pipeline import run
    base = tmp_path_factory.mktemp("tiny")
    cfg = make_cfg(TINY, cache_dir=base / "cache")
    return base, cfg, run(cfg, base / "run")


@pytest.fixture
def cifar_tgz() -> Path:
    if not CIFAR_TGZ.exists():
        pytest.skip(f"CIFAR-10 archive not present at {CIFAR_TGZ}")
    return CIFAR_TGZ


@pytest.fixture(scope="session")
def cifar_cache(tmp_path_factory) -> Path:
    """A cache directory shared by every test and xdist worker of the session, so the archive's
    60,000 JPEGs are decoded once (the first test to ask decodes, under the stage cache's file lock;
    the others wait for it and read the result)."""
    if not CIFAR_TGZ.exists():
        pytest.skip(f"CIFAR-10 archive not present at {CIFAR_TGZ}")
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cifar-cache"
