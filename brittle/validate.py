"""Checks of a command line before any work starts: each problem becomes one `error:` line.

1. Group choices (`scorer=nosuch`) are checked against conf/ before Hydra starts.
2. The configuration is composed through Hydra with a typed schema (`BrittleSchema`, registered in
   the ConfigStore and the first default of conf/config.yaml), so a top-level setting of the wrong
   type or an unknown key fails at composition.
3. Every `_target_` node (a scorer, task, search, trainer, evaluation, arch, network, method,
   loader, transform) is checked against the signature of what it builds: its keys must be
   parameters, its values of the annotated types.
A sweep (`-m key=a,b`) is checked for each value.
"""
from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


@dataclass
class TargetsSchema:
    n: int = 10
    only_correct: bool = True
    seed: int = 0
    indices: Optional[List[int]] = None
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
    dataset: Dict[str, Any] = field(default_factory=dict)
    backbone: Dict[str, Any] = field(default_factory=dict)
    scorer: Dict[str, Any] = field(default_factory=dict)
    task: Dict[str, Any] = field(default_factory=dict)
    search: Dict[str, Any] = field(default_factory=dict)
    arch: Dict[str, Any] = field(default_factory=dict)
    trainer: Dict[str, Any] = field(default_factory=dict)
    eval: Dict[str, Any] = field(default_factory=dict)


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


def check_targets(cfg: DictConfig) -> str | None:
    """The first `_target_` node whose keys or value types do not fit what it builds."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for path, node in _target_nodes(container, ""):
        problem = _check_node(path, node)
        if problem:
            return problem
    return None


def _target_nodes(node: Any, path: str):
    if isinstance(node, dict):
        if "_target_" in node:
            yield path, node
        for k, v in node.items():
            yield from _target_nodes(v, f"{path}{k}.")


def _signature(target_name: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(parameters, type hints, accepts **kwargs) of what `target_name` builds. The pretraining
    methods are read from source when not yet imported (checking one must not cost the seconds
    of importing Lightning); everything else is imported."""
    import sys
    module, _, name = target_name.rpartition(".")
    if module in _READ_FROM_SOURCE and module not in sys.modules:
        found = _source_signature(module, name)
        if found is not None:
            return found
    from hydra.utils import get_method
    target = get_method(target_name)
    fn = target.__init__ if inspect.isclass(target) else target
    params = dict(inspect.signature(fn).parameters)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # a library's annotations that do not resolve here: keys only
        hints = {}
    return params, hints, any(p.kind == p.VAR_KEYWORD for p in params.values())


_READ_FROM_SOURCE = ("brittle.methods",)
_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": None, "list": list, "tuple": tuple,
          "dict": dict, "Sequence": collections.abc.Sequence, "Mapping": collections.abc.Mapping,
          "Optional": typing.Optional, "Union": typing.Union, "Any": Any, "List": typing.List,
          "Tuple": typing.Tuple, "Dict": typing.Dict}


def _source_signature(module: str, name: str) -> tuple[dict[str, Any], dict[str, Any], bool] | None:
    """The parameters and simple annotations of `name` (a class's __init__, or a function) as
    written in the module's source; None when it is not plainly there."""
    import ast
    import importlib.util
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    tree = ast.parse(Path(spec.origin).read_text())
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None)
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if node is None:
        return None
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    params = {a.arg: a for a in args if a.arg != "self"}
    hints = {}
    for a in args:
        if a.annotation is not None:
            try:
                hints[a.arg] = eval(compile(ast.Expression(a.annotation), "<hint>", "eval"), {"__builtins__": {}}, _NAMES)
            except Exception:  # a name this reader does not know: the key is still checked
                pass
    return params, hints, node.args.kwarg is not None


def _check_node(path: str, node: dict) -> str | None:
    try:
        params, hints, open_kwargs = _signature(node["_target_"])
    except Exception:
        return f"{path}_target_={node['_target_']} cannot be imported; check the option's YAML file"
    for key, value in node.items():
        if key.startswith("_") or key == "label":
            continue
        if key not in params and not open_kwargs:
            valid = ", ".join(p for p in params if p not in ("self", "args", "kwargs"))
            return f"{path}{key} is not a setting of {node['_target_']}; valid: {valid}"
        if key in hints and not _fits(value, hints[key]):
            return (f"{path}{key}={value!r} has the wrong type: {node['_target_']} expects "
                    f"{_type_name(hints[key])}")
        record = _dataclass_in(hints.get(key))
        if record is not None and isinstance(value, dict):
            problem = _check_record(f"{path}{key}.", value, record)
            if problem:
                return problem
    return None


def _dataclass_in(hint: Any) -> type | None:
    """A dataclass the annotation admits (e.g. `Recipe | Mapping`), whose fields type a dict."""
    import dataclasses
    for h in (hint, *typing.get_args(hint)):
        if isinstance(h, type) and dataclasses.is_dataclass(h):
            return h
    return None


def _check_record(path: str, value: dict, record: type) -> str | None:
    hints = typing.get_type_hints(record)
    for key, item in value.items():
        if key not in hints:
            return f"{path}{key} is not a field of {record.__name__}; valid: {', '.join(hints)}"
        if not _fits(item, hints[key]):
            return f"{path}{key}={item!r} has the wrong type: {record.__name__} expects {_type_name(hints[key])}"
    return None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a config value can be the annotated type (ints for floats, lists for sequences)."""
    if hint is Any or value is None and _optional(hint):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    return True  # other types (tensors, modules, mappings) are the target's business


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")

