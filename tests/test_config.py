"""Every option of every config group composes, and its _target_ builds."""
from __future__ import annotations

import pytest
from hydra.utils import instantiate

from tests.conftest import CONF, make_cfg

GROUPS = {g.name: sorted(p.stem for p in g.glob("*.yaml"))
          for g in CONF.iterdir() if g.is_dir() and g.name != "hydra"}
OPTIONS = [(g, o) for g, opts in sorted(GROUPS.items()) for o in opts]


def test_expected_groups_exist():
    for group in ("dataset", "backbone", "scorer", "task", "search", "arch"):
        assert GROUPS.get(group), f"config group {group} is missing or empty"


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_resolves(group, option):
    override = f"{group}={option}"
    cfg = make_cfg([override])
    # resolving every interpolation catches dangling references between groups
    from omegaconf import OmegaConf
    OmegaConf.to_container(cfg, resolve=True)
    if group == "scorer":
        from brittle.scorers.base import Scorer
        assert isinstance(instantiate(cfg.scorer), Scorer)
    if group in ("task", "search"):
        assert instantiate(cfg[group]) is not None
    if group == "arch":
        model = instantiate(cfg.arch.model, in_shape=[cfg.dataset.channels, cfg.dataset.image_size,
                                                       cfg.dataset.image_size], num_classes=10)
        assert sum(p.numel() for p in model.parameters()) > 0
    if group == "backbone":
        net = instantiate(cfg.backbone.net)
        assert net.feature_dim > 0


def test_defaults_are_the_cpu_default_job():
    cfg = make_cfg([])
    assert cfg.dataset.name == "digits" and cfg.backbone.name == "moco_small"
    assert cfg.scorer._target_.endswith("ExemplarSVM") and cfg.task._target_.endswith("Remove")
    assert cfg.search.budget == 7 and cfg.search.n_test == 5 and cfg.search.max_support == 128


def test_paper_preset_matches_design():
    cfg = make_cfg(["experiment=paper_cifar10"])
    assert cfg.search.max_support == 1280 and cfg.search.budget == 7 and cfg.search.n_test == 5
    assert cfg.targets.n == 100 and cfg.backbone.epochs == 800
    assert cfg.arch.recipe.epochs == 24 and cfg.arch.recipe.batch_size == 512 and cfg.arch.recipe.lr == 0.5
