"""brittle runs on Hydra's public API, so pyproject's `hydra-core>=1.3` holds: no module imports
Hydra's private `hydra._internal`, each public name the command line relies on is named here
(a release that drops one fails with its name), and a sweep expands to the jobs Hydra's own basic
sweeper makes of it."""
from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from brittle.cli.commandline import _product, parse_command_line, parser_for
from tests.helpers import CONF, ROOT

# (module, attribute, what brittle does with it)
PUBLIC = [
    ("hydra", "main", "the app (brittle/cli/app.py)"),
    ("hydra", "compose", "one job's config (brittle/cli/commandline.py: compose)"),
    ("hydra", "initialize_config_dir", "the config directory a composition reads"),
    ("hydra.core.hydra_config", "HydraConfig", "the job's run directory and choices"),
    ("hydra.core.config_store", "ConfigStore", "the typed top level (brittle/cli/schema.py)"),
    ("hydra.utils", "instantiate", "every `_target_`"),
    ("hydra.core.override_parser.overrides_parser", "OverridesParser",
     "the override grammar of a command line"),
    ("hydra.core.override_parser.types", "Override", "one parsed override"),
]
# methods of a parsed Override the sweep expansion calls (brittle/cli/commandline.py: _product)
OVERRIDE_METHODS = ("is_sweep_override", "is_discrete_sweep", "sweep_string_iterator",
                    "get_key_element", "get_value_element_as_str")


def test_no_module_of_brittle_imports_hydras_private_code():
    private = []
    for path in sorted((ROOT / "brittle").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            private += [f"{path.relative_to(ROOT)}: {n}" for n in names
                        if n.startswith("hydra.") and any(p.startswith("_") for p in n.split("."))]
    assert not private, private


@pytest.mark.parametrize("module,name,use", PUBLIC, ids=[f"{m}.{n}" for m, n, _ in PUBLIC])
def test_the_public_hydra_api_brittle_uses_is_there(module, name, use):
    assert hasattr(importlib.import_module(module), name), \
        f"this hydra-core has no {module}.{name} ({use})"


def test_a_parsed_override_has_what_the_sweep_expansion_calls():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    missing = [m for m in OVERRIDE_METHODS if not callable(getattr(Override, m, None))]
    assert not missing, f"this hydra-core's Override lacks {missing}"
    assert "config_loader" in inspect.signature(OverridesParser.create).parameters, \
        "OverridesParser.create takes no config_loader: glob() sweeps cannot see group options"


SWEEPS = [
    ["scorer=esvm,l2", "task=remove,mislabel", "seed=3"],
    ["seed=range(2)", "scorer=random", "seed=5,6"],            # a later override of a key wins
    ["scorer=glob(*,exclude=[esvm,l2,trak,dattri])", "search=glob(b*)"],
    ["+x=1", "~debug", "targets.n=choice(3,4)", "arch@source_arch=mlp,cnn"],
]


@pytest.mark.parametrize("overrides", SWEEPS, ids=[" ".join(s) for s in SWEEPS])
def test_a_sweep_expands_as_hydras_basic_sweeper_expands_it(overrides):
    """The reference is Hydra's own sweeper and config loader: private, so used only here."""
    try:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra._internal.utils import create_config_search_path
    except ImportError as exc:   # another hydra-core: brittle itself does not need these
        pytest.skip(f"no reference: this hydra-core moved its basic sweeper ({exc})")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydras = OverridesParser.create(config_loader=ConfigLoaderImpl(
        config_search_path=create_config_search_path(str(CONF))))
    ours = parser_for(parse_command_line(["-m", *overrides]))
    expected = BasicSweeper.split_arguments(hydras.parse_overrides(overrides), None)[0]
    assert _product(ours.parse_overrides(overrides)) == expected


def test_an_interval_sweep_is_refused_in_one_line():
    line = parse_command_line(["-m", "scorer.C=interval(0.1,1)"])
    with pytest.raises(ValueError, match=r"scorer.C=interval\(0.1,1\): the basic sweeper"):
        _product(parser_for(line).parse_overrides(line.overrides))
