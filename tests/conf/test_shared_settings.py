"""A setting that the options of a group share is said once: in conf/_common/, which each option
lists first in its defaults, never again in an option with the same value (an option that needs
another value writes it)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from brittle.cli.configs import groups
from tests.helpers import CONF

# shared file -> (group, the node of each option it fills: "" is the option's own top level)
SHARED = {"backbone_method": [("backbone/method", "")], "search": [("search", "")],
          "trainer": [("trainer", "")], "recipe": [("arch", "recipe"), ("trainer", "recipe")]}


def _raw(group: str, option: str) -> dict:
    node = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{option}.yaml"))
    assert isinstance(node, dict)
    return node


def _lists(raw: dict, shared: str, at: str) -> bool:
    return f"/_common/{shared}@{at or '_here_'}" in raw.get("defaults", [])


@pytest.mark.parametrize("shared", sorted(SHARED))
def test_a_shared_setting_is_written_once(shared):
    common = _raw("_common", shared)
    users = 0
    for group, at in SHARED[shared]:
        for option in groups(CONF)[group]:
            raw = _raw(group, option)
            if not _lists(raw, shared, at):
                continue
            users += 1
            node = raw.get(at, {}) if at else raw
            again = [k for k, v in common.items() if k in node and node[k] == v]
            assert not again, f"{group}/{option}.yaml repeats conf/_common/{shared}.yaml: {again}"
    assert users >= 3, f"conf/_common/{shared}.yaml is listed by {users} options"


def test_every_pretraining_method_and_search_lists_its_shared_settings():
    for group, shared in (("backbone/method", "backbone_method"), ("search", "search")):
        missing = [o for o in groups(CONF)[group] if not _lists(_raw(group, o), shared, "")]
        assert not missing, f"{group} options without conf/_common/{shared}.yaml: {missing}"


def test_no_setting_is_repeated_in_every_option_of_a_group():
    """A value every option of a group writes alike belongs in conf/_common/ (null, an option's
    own unset setting, excepted)."""
    for group, options in groups(CONF).items():
        files = [_raw(group, o) for o in options]
        repeated = [k for k, v in files[0].items() if k != "defaults" and v is not None
                    and len(files) > 1 and all(k in f and f[k] == v for f in files[1:])]
        assert not repeated, f"every {group} option writes {repeated}: say it once in conf/_common/"
