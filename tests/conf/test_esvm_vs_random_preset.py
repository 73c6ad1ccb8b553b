"""experiment=cifar10_esvm_vs_random: ESVM and a random same-class order on full CIFAR-10, the
remove task, the fast recipe on airnet, both jobs of its sweep sharing one backbone and targets."""
from __future__ import annotations

from hydra.utils import instantiate

from brittle.cli.commandline import parse_command_line, sweep_jobs
from brittle.stages import embed, pretrain, reference, targets
from brittle.stages.keys import key_of, select
from tests.helpers import make_cfg

PRESET = "experiment=cifar10_esvm_vs_random"


def _jobs() -> list:
    jobs = sweep_jobs(parse_command_line(["-m", PRESET, "dataset.root=/data/cifar10"]))
    return [make_cfg(job) for job in jobs]


def test_its_sweep_is_the_two_scorers():
    scorers = [cfg.scorer._target_.rsplit(".", 1)[1] for cfg in _jobs()]
    assert scorers == ["ExemplarSVM", "RandomOrder"]


def test_it_removes_with_the_fast_recipe_on_airnet_on_full_cifar10():
    for cfg in _jobs():
        assert cfg.dataset.name == "cifar10" and cfg.dataset.root == "/data/cifar10"
        assert cfg.dataset.loader.train_subset is None and cfg.dataset.loader.test_subset is None
        assert instantiate(cfg.task).name == "remove"
        assert cfg.trainer.name == "fast" and cfg.arch.name == "airnet"
        assert cfg.backbone.name == "MoCo R18" and cfg.search.max_support == 1280
        assert cfg.search.n_test == 1 and cfg.targets.n == 10


def test_both_scorers_share_the_backbone_the_targets_and_the_reference_models():
    esvm, random = _jobs()
    for stage in (pretrain, embed, reference, targets):
        mine, theirs = select(esvm, stage.DEPENDS_ON), select(random, stage.DEPENDS_ON)
        assert key_of(mine) == key_of(theirs), stage
