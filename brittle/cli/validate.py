"""Checks of a command line before any work starts: each problem becomes one `error:` line.

1. Group choices (`scorer=nosuch`) are checked against conf/ before Hydra starts.
2. The configuration is composed through Hydra with a typed schema (`BrittleSchema`, registered in
   the ConfigStore and the first default of conf/config.yaml), so a top-level setting of the wrong
   type or an unknown key fails at composition.
3. Every `_target_` node (a scorer, task, search, trainer, evaluation, arch, network, method,
   loader, transform) is checked against the signature of what it builds (brittle/cli/signatures.py):
   its keys must be parameters, its values of the annotated types.
4. The cache directory and the run directory's location must be writable (and the cache's file
   locks must work) before Hydra creates anything.
A sweep (`-m key=a,b`) is checked for each value.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from brittle.cli.configs import config_dir, groups
from brittle.cli.signatures import check_targets


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
    return CommandLine(overrides, multirun, [str(Path(d).expanduser().resolve()) for d in dirs], flags)


def _search_path(dirs: list[str]) -> list[str]:
    """The override that adds a user's config directories to Hydra's search path (or none)."""
    return [f"hydra.searchpath=[{','.join(f'file://{d}' for d in dirs)}]"] if dirs else []


def _parser(line: CommandLine) -> Any:
    """Hydra's own override parser, with a config loader so that glob() sees the group options."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser

    search = create_config_search_path(str(config_dir()))
    for d in line.config_dirs + _searchpath_dirs(line.overrides):
        search.append("command-line", f"file://{d}")
    return OverridesParser.create(config_loader=ConfigLoaderImpl(config_search_path=search))


def _searchpath_dirs(overrides: list[str]) -> list[str]:
    """Directories of a `hydra.searchpath=[file://...]` override."""
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+") == "hydra.searchpath":
            return [v.strip().removeprefix("file://") for v in value.strip("[]").split(",") if v.strip()]
    return []


def sweep_jobs(line: CommandLine, sweeper_params: bool = True, parser: Any = None) -> list[list[str]]:
    """The jobs a command line stands for, each as its list of overrides, expanded by Hydra's
    basic sweeper (`a,b`, choice, range, glob, interval-free sweeps; with -m, the composed
    config's hydra.sweeper.params first, as the sweeper reads them, unless `sweeper_params` is
    false). `parser`: one made by `_parser` for this line, when the caller has it."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = parser or _parser(line)
    parsed = parser.parse_overrides(line.overrides)
    sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
    if sweeps and not line.multirun:
        raise ValueError(f"{sweeps[0]} is a sweep; add -m (--multirun) to run one job per value")
    if not line.multirun:
        return [list(line.overrides)]
    plain_first = [o.input_line for o in parsed if not o.is_sweep_override()]
    params = _sweeper_params(plain_first + _search_path(line.config_dirs)) if sweeper_params else []
    return BasicSweeper.split_arguments(parser.parse_overrides(params + line.overrides), None)[0]


def _sweeper_params(overrides: list[str]) -> list[str]:
    """`key=values` of the config's hydra.sweeper.params (an experiment's own sweep)."""
    try:
        cfg = compose([o for o in overrides if not o.lstrip("+~").startswith("hydra.sweeper")], hydra=True)
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


def check_choices(overrides: list[str], extra_dirs: list[str]) -> str | None:
    """One line naming an unknown `group=option`, or None."""
    options = groups()
    for d in extra_dirs:
        if Path(d).is_dir():
            for group, names in groups(Path(d)).items():
                options[group] = sorted({*options.get(group, []), *names})
    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        if key == "hydra/launcher":
            problem = _launcher_problem(value)
            if problem:
                return problem
        if not sep or key not in options or value == "null":
            continue
        if value not in options[key]:
            return f"{key}={value} is not an option of {key}; valid: {', '.join(options[key])}"
    return None


# launcher option -> the Hydra plugin package it needs (the `cluster` extra)
_LAUNCHERS = {"joblib": "hydra_plugins.hydra_joblib_launcher", "ray": "hydra_plugins.hydra_ray_launcher",
              **{name: "hydra_plugins.hydra_submitit_launcher"
                 for name in ("submitit", "submitit_slurm", "submitit_local")}}


def _launcher_problem(name: str) -> str | None:
    """A launcher whose Hydra plugin is not installed: the extra that brings it."""
    import importlib.util
    module = _LAUNCHERS.get(name)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return f"hydra/launcher={name} needs its Hydra plugin: pip install 'brittle[cluster]'"


def compose(overrides: list[str], hydra: bool = False) -> DictConfig:
    """The job config of `overrides` (with Hydra's own node when `hydra`); raises on composition
    errors."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


def _one_line(exc: BaseException, overrides: list[str]) -> str:
    """An OmegaConf/Hydra composition error as '<key>: <reason>' on one line."""
    cause = exc
    while cause.__cause__ is not None and not hasattr(cause, "full_key"):
        cause = cause.__cause__
    key = getattr(cause, "full_key", None)
    reason = " ".join(str(getattr(cause, "msg", None) or cause).split("\n")[0].split())
    if "not in struct" in reason or "not in 'BrittleSchema'" in reason:
        return f"{key} is not a setting of this configuration; {_siblings(str(key), overrides)}"
    if "could not be converted" in reason:
        return f"{key}: {reason.replace('Value ', 'the value ')}"
    return f"{key}: {reason}" if key else reason


def _siblings(key: str, overrides: list[str]) -> str:
    """'valid: ...' for the node that lacks `key`, composed without the override that named it."""
    parent = key.rpartition(".")[0]
    try:
        cfg = compose([o for o in overrides if o.lstrip("+~").partition("=")[0] != key])
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return f"valid under {parent or 'the top level'}: {', '.join(str(k) for k in node)}"
    except Exception:
        return "`python run.py --cfg job` prints every setting"


def check_locations(cfg: DictConfig, multirun: bool) -> str | None:
    """A cache directory or run directory that cannot be written (or locked), as one line, before
    Hydra creates the run directory. `cfg` is composed with Hydra's node; the run directory's
    fixed part (before any `${...}`) is probed at its nearest existing folder."""
    from brittle.runtime.errors import BrittleError
    from brittle.runtime.faults import check_writable

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    node = cfg.hydra.sweep if multirun else cfg.hydra.run
    template = str(node._get_node("dir")._value())  # unresolved: ${...} is filled by Hydra at run time
    run_dir = Path(template.split("${", 1)[0] or ".").expanduser()
    while not run_dir.exists() and run_dir != run_dir.parent:
        run_dir = run_dir.parent
    try:
        check_writable(Path(str(cfg.cache_dir)), "cache_dir", locks=True)
        check_writable(run_dir, key)
    except BrittleError as exc:
        return str(exc)
    return None


def check_job(overrides: list[str], extra: list[str], multirun: bool, first: bool) -> str | None:
    """The problem of one job's composed config as one line, or None. The first job is composed
    once, with Hydra's node, for its locations too (a composition is a good part of a second)."""
    job = [o for o in overrides if first or not o.lstrip("+~").startswith("hydra")] + _search_path(extra)
    try:
        cfg = compose(job, hydra=first)
    except Exception as exc:  # Hydra raises several types for a bad override
        return _one_line(exc, job)
    if first:
        problem = check_locations(cfg, multirun)
        if problem:
            return problem
        with open_dict(cfg):
            del cfg["hydra"]   # only the job's own nodes are checked below
    missing = OmegaConf.missing_keys(cfg)
    if missing:
        key = sorted(missing)[0]
        return f"{key} is required (???) and not set; give {key}=..."
    # a user's config directory may hold any target: then every node is checked
    touched = None if extra else [o.lstrip("+~").partition("=")[0] for o in overrides]
    return check_targets(cfg, touched)


def check_command_line(argv: list[str]) -> str | None:
    """The first problem of a `brittle` command line as one line, or None."""
    line = parse_command_line(argv)
    if line.hydra_flags:
        return None  # --help, --cfg, ... : Hydra's business
    extra = line.config_dirs + _searchpath_dirs(line.overrides)
    try:
        # options first, as if swept (a bad option is named even when -m is missing), then the jobs
        parser = _parser(line)
        as_swept = sweep_jobs(replace(line, multirun=True), sweeper_params=line.multirun, parser=parser)
        for overrides in jobs_to_check(as_swept):
            problem = check_choices(overrides, extra)
            if problem:
                return problem
        jobs = as_swept if line.multirun else sweep_jobs(line, parser=parser)
        if not jobs:  # a product over an empty sweep: Hydra would launch nothing
            return f"the sweep {' '.join(line.overrides)} expands to no job (a glob that matches no option?)"
    except Exception as exc:  # Hydra's parser: one line of its message
        return " ".join(str(exc).split("\n")[0].split())
    for i, overrides in enumerate(jobs_to_check(jobs)):
        problem = check_job(overrides, extra, line.multirun, first=i == 0)
        if problem:
            return problem
    return None
