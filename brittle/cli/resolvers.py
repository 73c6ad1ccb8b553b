"""OmegaConf resolvers of the config: run-directory names, the execution keys Hydra leaves out
of them, and the text of `python run.py --help`."""
from __future__ import annotations

import hashlib
import re

from omegaconf import ListConfig, OmegaConf

from brittle.cli.configs import config_dir
from brittle.cli.help import help_text
from brittle.cli.schema import register_schema
from brittle.runtime.execution import command_line_keys


def run_name(override_dirname: str) -> str:
    """A directory name for a run from its command-line overrides ('default' when none)."""
    if not override_dirname:
        return "default"
    name = re.sub(r"[^A-Za-z0-9=,._+-]", "_", override_dirname)
    if len(name) > 200:  # file names stop at 255 bytes: keep a readable head and a unique tail
        name = name[:180] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def execution_keys() -> list[str]:
    """The execution keys Hydra leaves out of run-directory names, with every setting of the
    built-in trackers (`logger.offline=true` names no other run directory than `logger=wandb`)."""
    import yaml

    settings: set[str] = set()
    for option in sorted((config_dir() / "logger").glob("*.yaml")):
        node = yaml.safe_load(option.read_text()) or {}
        settings.update(f"logger.{key}" for key in node if not str(key).startswith("_"))
    return command_line_keys() + sorted(settings)


def black_level(mean: list[float], std: list[float]) -> ListConfig:
    """A black pixel in normalised units, per channel: (0 - mean) / std (a ListConfig: a plain
    list cannot replace an interpolation when a config is resolved in place)."""
    return ListConfig([-float(m) / float(s) for m, s in zip(mean, std)])


def register_resolvers() -> None:
    """The resolvers conf/ uses, and the typed schema (brittle/cli/validate.py) it composes onto."""
    register_schema()
    OmegaConf.register_new_resolver("brittle_run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("brittle_execution_keys", execution_keys, replace=True)
    OmegaConf.register_new_resolver("brittle_help", help_text, replace=True)
    OmegaConf.register_new_resolver("brittle_black", black_level, replace=True)
