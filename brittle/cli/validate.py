"""Checks of a command line before any work starts: each problem becomes one `error:` line.

1. Group choices (`scorer=nosuch`) are checked against conf/ before Hydra starts.
2. The configuration is composed through Hydra with a typed schema (`BrittleSchema`, registered in
   the ConfigStore and the first default of conf/config.yaml), so a top-level setting of the wrong
   type or an unknown key fails at composition.
3. Every `_target_` node (a scorer, task, search, trainer, evaluation, arch, network, method,
   loader, transform) is checked against the signature of what it builds (brittle/cli/signatures.py):
   its keys must be parameters, its values of the annotated types.
A sweep (`-m key=a,b`) is checked for each value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from brittle.cli.signatures import check_targets

CONF = Path(__file__).resolve().parents[2] / "conf"


@dataclass
class TargetsSchema:
    n: int = 10
    only_correct: bool = True
    seed: int = 0
    indices: list[int] | None = None
    indices_ordering: str = "official"
    shard: int = 0
    num_shards: int = 1


@dataclass
class ReferenceSchema:
    n_models: int = 3


@dataclass
class ScoreSchema:
    chunk: int = 1024
    save_scores: bool = False


@dataclass
class BrittleSchema:
    """The typed top level of conf/config.yaml; each group's options are checked against the
    signatures of their `_target_`s (`check_targets`)."""
    seed: int = 0
    cache_dir: str = ".cache/brittle"
    device: str = "auto"
    progress: bool = True
    debug: bool = False
    targets: TargetsSchema = field(default_factory=TargetsSchema)
    reference: ReferenceSchema = field(default_factory=ReferenceSchema)
    score: ScoreSchema = field(default_factory=ScoreSchema)
    dataset: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    arch: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)


def register_schema() -> None:
    ConfigStore.instance().store(name="brittle_schema", node=BrittleSchema)


def check_choices(args: list[str]) -> str | None:
    """One line naming an unknown `group=option`, or None."""
    groups = {str(p.relative_to(CONF)) for p in CONF.rglob("*") if p.is_dir() and "hydra" not in p.parts}
    for arg in args:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in groups or "(" in value:
            continue
        valid = sorted(p.stem for p in (CONF / key).glob("*.yaml"))
        for option in value.split(","):
            if option not in valid and option != "null":
                return f"{key}={option} is not an option of {key}; valid: {', '.join(valid)}"
    return None


def _sweep_values(value: str) -> list[str]:
    """A multirun value as the single values it sweeps (range(n) -> its first)."""
    if value.startswith("range("):
        return [value[len("range("):].split(",")[0].rstrip(")")]
    if "[" in value or "(" in value:
        return [value]
    return value.split(",")


def sweep_configs(args: list[str]) -> list[list[str]]:
    """The override lists a command line stands for: one per swept value (others at their first)."""
    args = [a for a in args if a not in ("-m", "--multirun")]
    keys = [a.partition("=") for a in args]
    base = [f"{k}={_sweep_values(v)[0]}" if s else k for k, s, v in keys]
    out = [base]
    for i, (k, s, v) in enumerate(keys):
        for value in (_sweep_values(v)[1:] if s else []):
            out.append(base[:i] + [f"{k}={value}"] + base[i + 1:])
    return out


def compose(overrides: list[str]) -> DictConfig:
    """The job config of `overrides` (Hydra's own node dropped); raises on composition errors."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    return cfg


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


def check_command_line(argv: list[str]) -> str | None:
    """The first problem of a `python run.py` command line as one line, or None."""
    if any(a.startswith("--") and a not in ("--multirun",) for a in argv) or "-h" in argv or "-c" in argv:
        return None  # Hydra's own flags (--help, --cfg, --info, ...) are Hydra's business
    problem = check_choices(argv)
    if problem:
        return problem
    for overrides in sweep_configs(argv):
        job = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        try:
            cfg = compose(job)
        except Exception as exc:  # Hydra raises several types for a bad override
            return _one_line(exc, job)
        problem = check_targets(cfg)
        if problem:
            return problem
    return None
