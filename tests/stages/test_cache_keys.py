"""Cache keys are complete: every setting a cached stage is handed changes its key, settings of
other groups and execution settings never do, and a stage cannot read what it did not declare."""
from __future__ import annotations

import copy

import pytest
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ValidationError

from brittle.runtime.execution import DISPLAY_KEYS, EXECUTION_KEYS, run_identity
from brittle.runtime.files import canonical
from brittle.stages import bank, data, embed, models, pretrain, reference
from brittle.stages.keys import key_of, select
from tests.helpers import make_cfg

# stage -> (its key function of a config, config prefixes its key must never depend on)
UNRELATED_TO_MODELS = ("backbone", "scorer", "task", "search", "eval", "targets", "score",
                       "dataset.ssl_transform")
STAGES = {
    "data": (lambda c: key_of(select(c, data.DEPENDS_ON)),
             ("backbone", "arch", "trainer", "scorer", "task", "search", "eval", "targets",
              "seed")),
    "pretrain": (lambda c: pretrain.key(select(c, pretrain.DEPENDS_ON, pretrain.EXCLUDES)),
                 ("scorer", "task", "search", "arch", "trainer", "eval", "targets", "reference",
                  "score", "dataset.loader.test_subset")),
    "embed": (lambda c: embed.key(select(c, embed.DEPENDS_ON)),
              ("scorer", "task", "search", "arch", "trainer", "eval", "targets", "reference",
               "score")),
    "reference": (lambda c: key_of(select(c, reference.DEPENDS_ON)), UNRELATED_TO_MODELS),
    "bank": (lambda c: bank.key(select(c, bank.DEPENDS_ON), 10, 0.5, "lds"),
             (*UNRELATED_TO_MODELS, "reference")),
    "models": (lambda c: key_of(select(c, models.DEPENDS_ON)), (*UNRELATED_TO_MODELS, "reference")),
}
DECLARED = {"data": data.DEPENDS_ON, "pretrain": pretrain.DEPENDS_ON, "embed": embed.DEPENDS_ON,
            "reference": reference.DEPENDS_ON, "bank": bank.DEPENDS_ON, "models": models.DEPENDS_ON}
EXCLUDED = {"pretrain": pretrain.EXCLUDES}


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip(".")


def _perturbed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.01
    if isinstance(value, str):
        return value + "_x"
    if isinstance(value, list):
        return [*value, value[-1] if value else 1]
    return 1  # None


def _changed(cfg: DictConfig, path: str) -> DictConfig:
    out = copy.deepcopy(cfg)
    value = OmegaConf.select(cfg, path)
    value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    for new in (_perturbed(value), [1]):   # an unset list (None) takes a list under the schema
        try:
            OmegaConf.update(out, path, new, force_add=True)
            return out
        except ValidationError:
            continue
    raise AssertionError(f"cannot change {path}")


@pytest.fixture(scope="module")
def cfg():
    return make_cfg([])


def _under(path: str, prefixes) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_declared_setting_changes_the_key_and_no_other_group_does(cfg, stage):
    key_fn, unrelated = STAGES[stage]
    base = canonical(key_fn(cfg))
    leaves = [p for p in _leaves(OmegaConf.to_container(cfg, resolve=True))
              if not _under(p, EXECUTION_KEYS) and p not in DISPLAY_KEYS]
    declared = [p for p in leaves if _under(p, DECLARED[stage])
                and not _under(p, EXCLUDED.get(stage, ()))]
    assert declared, stage
    missed = [p for p in declared if canonical(key_fn(_changed(cfg, p))) == base]
    assert not missed, f"{stage} key ignores settings it is handed: {missed}"
    leaked = [p for p in leaves if _under(p, unrelated)
              and canonical(key_fn(_changed(cfg, p))) != base]
    assert not leaked, f"{stage} key depends on unrelated settings: {leaked}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_execution_settings_and_labels_never_change_a_key(stage):
    key_fn, _ = STAGES[stage]
    base = canonical(key_fn(make_cfg(["device=auto", "progress=false"])))
    other = make_cfg(["device=cpu", "progress=true", "debug=true", "cache_dir=/elsewhere",
                      "backbone.name=Other", "arch.name=other"])
    assert canonical(key_fn(other)) == base


def test_augmentation_sweep_gets_its_own_backbone():
    """The bug this guards against: min_scale=0.9 reused the backbone pretrained with 0.5."""
    key = STAGES["pretrain"][0]
    default = canonical(key(make_cfg([])))
    assert default != canonical(key(make_cfg(["dataset.ssl_transform.min_scale=0.9"])))
    assert default != canonical(key(make_cfg(["dataset.normalize.mean=[0.2]"])))
    assert default == canonical(key(make_cfg(["scorer=l2", "task=mislabel"])))


def test_a_stage_cannot_read_an_undeclared_setting(cfg):
    spec = select(cfg, pretrain.DEPENDS_ON, pretrain.EXCLUDES)
    assert spec.backbone.epochs == cfg.backbone.epochs and "name" not in spec.backbone
    with pytest.raises(ConfigAttributeError):
        spec.scorer  # noqa: B018
    with pytest.raises(ConfigAttributeError):
        spec.dataset.loader.test_subset  # noqa: B018


def test_run_identity_ignores_where_a_run_executes():
    a = run_identity(make_cfg(["device=auto"]))
    b = run_identity(make_cfg(["device=cpu", "progress=true", "cache_dir=/tmp/x"]))
    assert canonical(a) == canonical(b)
    identity = run_identity(make_cfg(["scorer=esvm"]))
    assert not {"device", "progress", "cache_dir", "debug"} & set(identity)
