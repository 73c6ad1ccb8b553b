"""Every option of every config group composes, and its _target_ builds."""
from __future__ import annotations

import pytest
from hydra.utils import instantiate

from brittle.cli.configs import groups
from tests.helpers import CONF, make_cfg

GROUPS = groups(CONF)
OPTIONS = [(g, o) for g, opts in sorted(GROUPS.items()) for o in opts]


def test_expected_groups_exist():
    for group in ("dataset", "backbone", "backbone/method", "backbone/net", "scorer", "task",
                  "search", "arch", "trainer", "eval", "experiment"):
        assert GROUPS.get(group), f"config group {group} is missing or empty"


def _backbone_for(group: str, option: str) -> list[str]:
    """A backbone option built from this method or network (the nested backbone groups)."""
    if group == "backbone/method":
        return [f"backbone={option}_small"]
    return [f"backbone=moco_{'small' if option == 'small_cnn' else 'r18'}"]


def _overrides(group: str, option: str) -> list[str]:
    """The overrides that choose this option, with the settings it needs besides."""
    overrides = (_backbone_for(group, option) if group.startswith("backbone/")
                 else [f"{group}={option}"])
    if group == "experiment" and option != "digits_compare":
        overrides.append("dataset.root=/data/cifar10")
    if (group, option) == ("scorer", "precomputed"):
        overrides.append("scorer.path=scores.npz")   # required (???): the file to evaluate
    # required (???): your own network and loop (docs/your-model.md); brittle's stand in
    if (group, option) == ("arch", "custom"):
        overrides.append("arch.model._target_=brittle.retrain.arches.MLP")
    if (group, option) == ("trainer", "custom"):
        overrides.append("trainer.fit=brittle.retrain.custom.CustomTrainer")
    return overrides


def _check_backbone(cfg, group: str, option: str) -> None:
    """The backbone network and its pretraining method build; a pretrained one downloads nothing."""
    if cfg.backbone.get("method") is not None:
        net = instantiate(cfg.backbone.net)
        assert net.feature_dim > 0
        extra = {"num_classes": 10} if "num_classes" in cfg.backbone.method else {}
        method = instantiate(cfg.backbone.method, backbone=net, max_epochs=1, batch_size=8, **extra)
        assert method.configure_optimizers() is not None
    if group == "backbone" and option == "pretrained":
        assert cfg.backbone.checkpoint is None   # a user file: nothing is downloaded


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_resolves_and_builds_its_object(group, option, tmp_path):
    from omegaconf import OmegaConf

    from brittle.scorers.base import Scorer
    cfg = make_cfg(_overrides(group, option))
    # resolving every interpolation catches dangling references between groups
    OmegaConf.to_container(cfg, resolve=True)
    shape = [cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size]
    if group == "scorer":
        assert isinstance(instantiate(cfg.scorer), Scorer)
    if group in ("task", "search", "trainer", "eval"):
        assert instantiate(cfg[group]) is not None
    if group == "trainer":
        assert instantiate(cfg.trainer).name == option
    if group == "eval":
        assert isinstance(instantiate(cfg.eval).needs_attributions, bool)
    if group == "arch":
        model = instantiate(cfg.arch.model, in_shape=shape, num_classes=10)
        assert sum(p.numel() for p in model.parameters()) > 0
    if group == "dataset":
        from hydra.utils import get_method
        assert callable(get_method(cfg.dataset.loader._target_))
    if group.startswith("backbone"):
        _check_backbone(cfg, group, option)


def test_loaders_build_datasets(cifar_tgz, cifar_cache):
    from brittle.api import load_data
    digits = load_data(make_cfg([]))
    assert digits.train.images.shape == (1437, 1, 8, 8) and digits.ordering == "official"
    cifar = load_data(make_cfg(["dataset=cifar10", f"dataset.root={cifar_tgz}",
                                "dataset.train_subset=100", "dataset.test_subset=20"],
                               cache_dir=cifar_cache))
    assert cifar.train.images.shape == (100, 3, 32, 32) and cifar.ordering == "class-folder"


def test_defaults_are_the_cpu_default_job():
    cfg = make_cfg([])
    assert cfg.dataset.name == "digits" and cfg.backbone.name == "MoCo"
    assert cfg.scorer._target_.endswith("ExemplarSVM") and cfg.task._target_.endswith("Remove")
    assert cfg.search.budget == 7 and cfg.search.n_test == 5 and cfg.search.max_support == 128


def test_paper_preset_matches_design():
    cfg = make_cfg(["experiment=paper_cifar10"])
    assert cfg.search.max_support == 1280 and cfg.search.budget == 7 and cfg.search.n_test == 5
    assert cfg.targets.n == 100 and cfg.backbone.epochs == 800
    assert (cfg.arch.recipe.epochs == 24 and cfg.arch.recipe.batch_size == 512
            and cfg.arch.recipe.lr == 0.5)
