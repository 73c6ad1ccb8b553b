"""A `brittle` command line as Hydra reads it: its flags and config directories, its overrides,
the jobs a sweep stands for (parsed by Hydra's own override parser, expanded as its basic sweeper
does), and the composition of one job's config. The checks of brittle/cli/validate.py run on
these. Hydra's public API only (its plugin API: the override parser and its `Override`s), so any
hydra-core 1.3 runs it (tests/cli/test_sweeps.py checks the expansion against Hydra's own)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from brittle.cli.configs import config_dir, groups


@dataclass(frozen=True)
class CommandLine:
    """A `brittle` command line: its overrides, whether it sweeps (-m), the config directories a
    user added (--config-dir, hydra.searchpath), and whether it holds Hydra's own flags."""
    overrides: list[str]
    multirun: bool = False
    config_dirs: list[str] = field(default_factory=list)
    hydra_flags: bool = False


def parse_command_line(argv: list[str]) -> CommandLine:
    overrides, dirs, multirun, flags = [], [], False, False
    args = iter(argv)
    for arg in args:
        if arg in ("-m", "--multirun"):
            multirun = True
        elif arg in ("-cd", "--config-dir"):
            dirs.append(next(args, ""))
        elif arg.startswith("--config-dir="):
            dirs.append(arg.partition("=")[2])
        elif arg.startswith("-"):
            flags = True  # --help, --cfg, --info, -c, ...: Hydra's business
        else:
            overrides.append(arg)
    return CommandLine(overrides, multirun, [str(Path(d).expanduser().resolve()) for d in dirs],
                       flags)


def search_path(dirs: list[str]) -> list[str]:
    """The override that adds a user's config directories to Hydra's search path (or none)."""
    return [f"hydra.searchpath=[{','.join(f'file://{d}' for d in dirs)}]"] if dirs else []


def parser_for(line: CommandLine) -> Any:
    """Hydra's own override parser. Its config loader is asked one thing, by `glob()` sweeps: a
    group's options (brittle's, and those of the user's config directories)."""
    from types import SimpleNamespace

    from hydra.core.override_parser.overrides_parser import OverridesParser

    roots: list[Path | str] = [config_dir(), *line.config_dirs, *searchpath_dirs(line.overrides)]
    loader = SimpleNamespace(get_group_options=lambda g, *_, **__: groups(*roots).get(g, []))
    return OverridesParser.create(config_loader=cast(Any, loader))


def searchpath_dirs(overrides: list[str]) -> list[str]:
    """Directories of a `hydra.searchpath=[file://...]` override."""
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            return [v.strip().removeprefix("file://") for v in value.strip("[]").split(",")
                    if v.strip()]
    return []


def sweep_jobs(line: CommandLine, sweeper_params: bool = True,
               parser: Any = None) -> list[list[str]]:
    """The jobs a command line stands for, each as its list of overrides, as Hydra's basic
    sweeper expands them (`a,b`, choice, range, glob; with -m, the composed config's
    hydra.sweeper.params first, as the sweeper reads them, unless `sweeper_params` is false).
    `parser`: one made by `parser_for` for this line, when the caller has it."""
    parser = parser or parser_for(line)
    parsed = parser.parse_overrides(line.overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if sweeps and not line.multirun:
        raise ValueError(f"{sweeps[0]} is a sweep; add -m (--multirun) to run one job per value")
    if not line.multirun:
        return [list(line.overrides)]
    plain_first = [o.input_line for o in parsed if not o.is_sweep_override()]
    params = _sweeper_params(plain_first + search_path(line.config_dirs)) if sweeper_params else []
    return _product(parser.parse_overrides(params + line.overrides))


def _product(parsed: list[Any]) -> list[list[str]]:
    """Every combination of the overrides' values, keys in the order they first appear (a later
    override of a key replaces the earlier one), the last key's values varying fastest."""
    values: dict[str, list[str]] = {}
    for o in parsed:
        if o.is_sweep_override() and not o.is_discrete_sweep():
            raise ValueError(f"{o.input_line}: the basic sweeper enumerates choices, ranges and "
                             "globs, not intervals (an optimising sweeper plugin samples those)")
        key = o.get_key_element()
        swept = o.sweep_string_iterator() if o.is_sweep_override() else \
            [o.get_value_element_as_str()]
        values[key] = [f"{key}={v}" for v in swept]
    return [list(job) for job in itertools.product(*values.values())]


def _sweeper_params(overrides: list[str]) -> list[str]:
    """`key=values` of the config's hydra.sweeper.params (an experiment's own sweep)."""
    try:
        cfg = compose([o for o in overrides if not o.lstrip("+~").startswith("hydra.sweeper")],
                      hydra=True)
    except Exception:  # a bad override: the check of the job itself names it
        return []
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return [f"{k}={v}" for k, v in params.items()]


def jobs_to_check(jobs: list[list[str]]) -> list[list[str]]:
    """The first job and, for every other value a key takes, one job with it (linear, not the
    product: each value is checked once in the context of the first job)."""
    if not jobs:
        return []
    first = {o.partition("=")[0]: o for o in jobs[0]}
    picked, seen = [jobs[0]], set(first.values())
    for job in jobs[1:]:
        new = [o for o in job if o not in seen]
        if new:
            picked.append([*(first | {o.partition("=")[0]: o for o in new}).values()])
            seen.update(new)
    return picked


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    """The job config of `overrides` (with Hydra's own node when `hydra`); raises on composition
    errors."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=hydra)
