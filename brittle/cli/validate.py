"""Checks of a command line before any work starts: each problem becomes one `error:` line.

1. Group choices (`scorer=nosuch`) are checked against conf/ before Hydra starts.
2. The configuration is composed through Hydra with a typed schema (`BrittleSchema`, registered in
   the ConfigStore and the first default of conf/config.yaml), so a top-level setting of the wrong
   type or an unknown key fails at composition.
3. Every `_target_` node (a scorer, task, search, trainer, evaluation, arch, network, method,
   loader, transform) is checked against the signature of what it builds
   (brittle/cli/signatures.py): its keys must be parameters, its values of the annotated types.
4. The values of the groups that judge their own values cheaply (search, task, eval) are checked
   by building those objects, and `targets.indices` (a list, or a file of them) is read.
5. The cache directory and the run directory's location must be writable (and the cache's file
   locks must work) before Hydra creates anything.
A sweep (`-m key=a,b`) is checked for each value (brittle/cli/commandline.py expands it).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from brittle.cli.commandline import (
    compose,
    jobs_to_check,
    parse_command_line,
    parser_for,
    search_path,
    searchpath_dirs,
    sweep_jobs,
)
from brittle.cli.configs import config_dir, groups
from brittle.cli.signatures import check_targets


def check_choices(overrides: list[str], extra_dirs: list[str]) -> str | None:
    """One line naming an unknown `group=option`, or None."""
    options = groups(config_dir(), *extra_dirs)
    for arg in overrides:
        key, sep, value = arg.lstrip("+~").partition("=")
        problem = _package_problem(key, value)
        if problem:
            return problem
        if not sep or key not in options or value == "null":
            continue
        if value not in options[key]:
            return f"{key}={value} is not an option of {key}; valid: {', '.join(options[key])}"
    return None


# launcher option -> the Hydra plugin package it needs (the `cluster` extra)
_LAUNCHERS = {"joblib": "hydra_plugins.hydra_joblib_launcher",
              "ray": "hydra_plugins.hydra_ray_launcher",
              **{name: "hydra_plugins.hydra_submitit_launcher"
                 for name in ("submitit", "submitit_slurm", "submitit_local")}}


def _package_problem(key: str, value: str) -> str | None:
    """A launcher or tracker (`logger=`) whose package is not installed: the extra to install."""
    if key == "hydra/launcher":
        return _launcher_problem(value)
    if key == "logger":
        from brittle.runtime.tracking import missing_extra
        return missing_extra(value)
    return None


def _launcher_problem(name: str) -> str | None:
    """A launcher whose Hydra plugin is not installed: the extra that brings it."""
    import importlib.util
    module = _LAUNCHERS.get(name)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return f"hydra/launcher={name} needs its Hydra plugin: pip install 'brittle[cluster]'"


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
    # unresolved: ${...} is filled by Hydra at run time
    template = str(node._get_node("dir")._value())
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
    job = ([o for o in overrides if first or not o.lstrip("+~").startswith("hydra")]
           + search_path(extra))
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
    return (check_targets(cfg, touched) or check_values(cfg) or check_target_indices(cfg)
            or check_normalize(cfg) or check_replay(cfg))


# groups whose objects judge their own values and build without torch (tests/cli/test_app.py
# checks the import): built here, so a value out of range fails before any run directory exists
JUDGED_GROUPS = ("search", "task", "eval")


def check_values(cfg: DictConfig) -> str | None:
    """The first value that a cheap group object refuses (search.budget=-1), as one line."""
    from hydra.utils import instantiate

    from brittle.runtime.errors import BrittleError

    for group in JUDGED_GROUPS:
        node = cfg.get(group)
        if node is None or "_target_" not in node or not str(node._target_).startswith("brittle."):
            continue   # a user's own class: judged when the run builds it
        try:
            instantiate(node)
        except Exception as exc:  # Hydra wraps what a constructor raises
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, BrittleError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:
                return str(cause)
            # anything else is the run's to report, with its context
    return None


def check_replay(cfg: DictConfig) -> str | None:
    """A trainer or recipe setting that the weighted runs of scorer=magic or eval=lds_same_order
    cannot replay, as one line (the arch is checked once built, before any model trains)."""
    from brittle.retrain.replayable import config_problem

    return config_problem(cfg)


def check_target_indices(cfg: DictConfig) -> str | None:
    """`targets.indices` that are not integer indices, each once, or a file of them that is
    missing or unreadable, as one line (the test set's range is checked once the dataset is
    loaded, before any model trains)."""
    from brittle.data.indices import read_indices
    from brittle.runtime.errors import BrittleError

    value = OmegaConf.select(cfg, "targets.indices")
    if value is None:
        return None
    try:
        read_indices(value)
    except BrittleError as exc:
        return str(exc)
    return None


def check_command_line(argv: list[str]) -> str | None:
    """The first problem of a `brittle` command line as one line, or None."""
    line = parse_command_line(argv)
    if line.hydra_flags:
        return None  # --help, --cfg, ... : Hydra's business
    extra = line.config_dirs + searchpath_dirs(line.overrides)
    try:
        # options first, as if swept (a bad option is named even when -m is missing), then the jobs
        parser = parser_for(line)
        as_swept = sweep_jobs(replace(line, multirun=True), sweeper_params=line.multirun,
                              parser=parser)
        for overrides in jobs_to_check(as_swept):
            problem = check_choices(overrides, extra)
            if problem:
                return problem
        jobs = as_swept if line.multirun else sweep_jobs(line, parser=parser)
        if not jobs:  # a product over an empty sweep: Hydra would launch nothing
            return (f"the sweep {' '.join(line.overrides)} expands to no job "
                    "(a glob that matches no option?)")
    except Exception as exc:  # Hydra's parser: one line of its message
        return " ".join(str(exc).split("\n")[0].split())
    for i, overrides in enumerate(jobs_to_check(jobs)):
        problem = check_job(overrides, extra, line.multirun, first=i == 0)
        if problem:
            return problem
    return None


def check_normalize(cfg: DictConfig) -> str | None:
    """A `dataset.normalize` mean or std without one value a channel (a grayscale
    `dataset=huggingface` left with RGB statistics would broadcast its images to three
    channels), as one line."""
    data = cfg.get("dataset")
    if data is None or data.get("channels") is None or data.get("normalize") is None:
        return None
    for part in ("mean", "std"):
        values = data.normalize.get(part)
        if values is not None and len(values) != data.channels:
            return (f"dataset.normalize.{part}={list(values)} has {len(values)} values, but "
                    f"dataset.channels={data.channels}; give one value per channel")
    return None
