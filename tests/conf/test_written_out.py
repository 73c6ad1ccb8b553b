"""Every setting is written in its YAML: each argument of brittle's own `_target_`s that has a
default, in every option of every group, and each field of a recipe, so that `--cfg job` shows
it and a command line sets it without `+` (the commands of the docs: tests/test_docs.py). A
default written out changes no key (tests/runtime/test_defaults.py)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from brittle.cli.configs import groups
from brittle.runtime.defaults import RECORDS, record_defaults, signature_defaults
from tests.helpers import CONF, make_cfg

# arguments with a default that the code hands a target, never the config: a loader's permission
# to download (`dataset.download`, an execution setting)
PASSED = {"download"}
OPTIONS = [(g, o) for g, opts in groups(CONF).items() for o in opts]


def _target_nodes(node, path=""):
    if isinstance(node, dict):
        if "_target_" in node:
            yield path.rstrip("."), node
        for key, value in node.items():
            yield from _target_nodes(value, f"{path}{key}.")


def unwritten(container: dict) -> list[str]:
    """The settings of brittle's targets and recipes that a composed config leaves out."""
    missing = []
    for path, node in _target_nodes(container):
        if not str(node["_target_"]).startswith("brittle."):
            continue
        defaults, records = signature_defaults(node["_target_"])
        missing += [f"{path}.{k}" for k in defaults if k not in node and k not in PASSED]
        missing += [f"{path}.{param}.{k}" for param, record in records.items()
                    if isinstance(node.get(param), dict)
                    for k in record_defaults(record) if k not in node[param]]
    for path, record in RECORDS.items():
        node = OmegaConf.select(OmegaConf.create(container), path)
        if node is not None:
            missing += [f"{path}.{k}" for k in record_defaults(record) if k not in node]
    return missing


@pytest.mark.heavy
@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_setting_of_an_option_is_written(group, option):
    container = OmegaConf.to_container(make_cfg([f"{group}={option}"]), resolve=False)
    assert unwritten(container) == [], f"write these out in conf/ (the {group}={option} files)"


def test_a_left_out_setting_is_found():
    """The check itself: a recipe field and a target's argument left out are both named."""
    container = OmegaConf.to_container(make_cfg(["trainer=paper"]), resolve=False)
    del container["trainer"]["recipe"]["schedule"], container["search"]["budget"]
    del container["arch"]["recipe"]["precision"]
    assert sorted(unwritten(container)) == ["arch.recipe.precision", "search.budget",
                                            "trainer.recipe.schedule"]
