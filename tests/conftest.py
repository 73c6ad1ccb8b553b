"""Shared test helpers: Hydra composition of the real config, tiny-run overrides, data paths."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from brittle.config import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
CIFAR_TGZ = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

register_resolvers()

# A whole run in seconds: one pretraining epoch, two targets, a 3-test bisection of 2 models.
TINY = [
    "backbone.epochs=1",
    "targets.n=2",
    "search.budget=2",
    "search.n_test=2",
    "search.max_support=16",
    "reference.n_models=1",
    "arch.recipe.epochs=4",
]


def make_cfg(overrides: list[str], cache_dir: Path | None = None) -> DictConfig:
    extra = [f"cache_dir={cache_dir}"] if cache_dir is not None else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides) + extra)


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
