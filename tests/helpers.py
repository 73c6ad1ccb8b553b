"""Shared test helpers: Hydra composition of the real config, tiny-run overrides, data paths."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from brittle.cli.resolvers import register_resolvers

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
