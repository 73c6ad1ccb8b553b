"""Typed checks of a composed configuration's `_target_` nodes against what they build.

The schema of a group option is the signature of its `_target_` (a class's `__init__` or a
function): every key must be a parameter, every value of the annotated type (ints pass for
floats, lists for sequences, None for optionals), and a dict given for a dataclass parameter
(the training `Recipe`) is checked field by field. Returns the first problem as one line.
"""
from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brittle.runtime.names import moved


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


_READ_FROM_SOURCE = ("brittle.ssl.methods", "brittle.ssl.benchmark_methods")
_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": None, "list": list, "tuple": tuple,
          "dict": dict, "Sequence": collections.abc.Sequence, "Mapping": collections.abc.Mapping,
          "Optional": typing.Optional, "Union": typing.Union, "Any": Any, "List": list,
          "Tuple": tuple, "Dict": dict}


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
                code = compile(ast.Expression(a.annotation), "<hint>", "eval")
                hints[a.arg] = eval(code, {"__builtins__": {}}, _NAMES)
            except Exception:  # a name this reader does not know: the key is still checked
                pass
    return params, hints, node.args.kwarg is not None


def _check_node(path: str, node: dict) -> str | None:
    new = moved(str(node["_target_"]))
    if new is not None:
        return f"{path}_target_={node['_target_']} has moved; use {path}_target_={new}"
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

