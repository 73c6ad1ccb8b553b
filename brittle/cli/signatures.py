"""Typed checks of a composed configuration's `_target_` nodes against what they build.

The schema of a group option is the signature of its `_target_` (a class's `__init__` or a
function): every key must be a parameter, every value of the annotated type (ints pass for
floats, lists for sequences, None for optionals), and a dict given for a dataclass parameter
(the training `Recipe`) is checked field by field. Returns the first problem as one line.

brittle's own targets are read from their source with `ast` while their module is not imported
yet: importing them would import torch, lightly and Lightning, seconds a check of a command line
must not cost. Typed structured configs would state each of those signatures a second time.
"""
from __future__ import annotations

import ast
import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brittle.runtime.defaults import dataclass_in


def check_targets(cfg: DictConfig, touched: list[str] | None = None) -> str | None:
    """The first `_target_` node whose keys or value types do not fit what it builds. With
    `touched` (the keys a command line sets), a library's target (a lightly transform) is
    checked only when one of them lies in its node: its options as conf/ writes them are the
    test suite's business, and importing a library costs seconds a check should not."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for path, node in _target_nodes(container, ""):
        own = str(node["_target_"]).startswith("brittle.")
        if touched is not None and not own and not any(f"{k}.".startswith(path) for k in touched):
            continue
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


def _signature(target_name: str) -> tuple[list[str], dict[str, Any], bool]:
    """(parameters, type hints, accepts **kwargs) of what `target_name` builds: brittle's own
    from source while not yet imported, a library's (and a dataclass's) imported."""
    import sys
    module, _, name = target_name.rpartition(".")
    if module.startswith("brittle.") and module not in sys.modules:
        found = _source_signature(module, name)
        if found is not None:
            return found
    from hydra.utils import get_method
    target = get_method(target_name)
    fn = target.__init__ if inspect.isclass(target) else target
    params = inspect.signature(fn).parameters
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # a library's annotations that do not resolve here: keys only
        hints = {}
    return ([p for p in params if p not in ("self", "args", "kwargs")], hints,
            any(p.kind == p.VAR_KEYWORD for p in params.values()))


@functools.cache
def _module_tree(module: str) -> Any:
    """The parsed source of a module, or None when it has no plain source file (parsed once:
    a check reads the same modules for several targets and their records)."""
    import importlib.util
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text())


def _source_signature(module: str, name: str) -> tuple[list[str], dict[str, Any], bool] | None:
    """The parameters and simple annotations of `name` (a class's __init__, or a function) as
    written in the module's source; None when it is not plainly there (a dataclass, whose
    __init__ is generated, or an inherited one: those are imported)."""
    tree = _module_tree(module)
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
                 and n.name == name), None) if tree is not None else None
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef)
                     and n.name == "__init__"), None)
    if node is None:
        return None
    args = [a for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
            if a.arg != "self"]
    hints = {a.arg: h for a in args if a.annotation is not None
             and (h := _hint(a.annotation, module)) is not None}
    return [a.arg for a in args], hints, node.args.kwarg is not None


_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": None, "list": list,
          "tuple": tuple, "dict": dict, "Sequence": collections.abc.Sequence,
          "Mapping": collections.abc.Mapping, "Any": Any}


@functools.cache
def _record(module: str, name: str) -> type | None:
    """The dataclass `name` that `module` defines or imports from a brittle module, rebuilt from
    its source as fields with their hints, so a dict given for one (a recipe) is checked field by
    field without importing anything."""
    tree = _module_tree(module)
    for node in tree.body if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("brittle."):
            imported = next((a.name for a in node.names if (a.asname or a.name) == name), None)
            if imported is not None:
                return _record(str(node.module), imported)
        if (isinstance(node, ast.ClassDef) and node.name == name
                and any("dataclass" in ast.unparse(d) for d in node.decorator_list)):
            return dataclasses.make_dataclass(name, [
                (a.target.id, _hint(a.annotation, module) or Any, dataclasses.field(default=None))
                for a in node.body if isinstance(a, ast.AnnAssign)
                and isinstance(a.target, ast.Name) and "ClassVar" not in ast.unparse(a.annotation)])
    return None


def _hint(annotation: Any, module: str) -> Any:
    """An annotation written in `module`'s source, evaluated over plain types and the dataclasses
    it names (None when it names anything else: the key is still checked)."""
    records = {n.id: _record(module, n.id) for n in ast.walk(annotation)
               if isinstance(n, ast.Name) and n.id not in _NAMES}
    try:
        return eval(compile(ast.Expression(annotation), "<hint>", "eval"), {"__builtins__": {}},
                    {**_NAMES, **{k: v for k, v in records.items() if v is not None}})
    except Exception:  # a name this reader does not know
        return None


def _check_node(path: str, node: dict) -> str | None:
    try:
        params, hints, open_kwargs = _signature(node["_target_"])
    except Exception:
        return f"{path}_target_={node['_target_']} cannot be imported; check the option's YAML file"
    settings = {k: v for k, v in node.items() if not k.startswith("_") and k != "name"}
    return _check_fields(path, settings, None if open_kwargs else params, hints,
                         node["_target_"], "a setting")


def _check_fields(path: str, values: dict, allowed: list[str] | None, hints: dict[str, Any],
                  owner: str, noun: str) -> str | None:
    """The first key outside `allowed` (None: any) or value unlike its hint, as one line; a dict
    given for a dataclass is checked field by field."""
    for key, value in values.items():
        if allowed is not None and key not in allowed:
            return f"{path}{key} is not {noun} of {owner}; valid: {', '.join(allowed)}"
        hint = hints.get(key, Any)
        if not _fits(value, hint):
            return (f"{path}{key}={value!r} has the wrong type: {owner} expects "
                    f"{getattr(hint, '__name__', None) or str(hint).replace('typing.', '')}")
        record = dataclass_in(hint)
        if record is not None and isinstance(value, dict):
            fields = typing.get_type_hints(record)
            problem = _check_fields(f"{path}{key}.", value, list(fields), fields,
                                    record.__name__, "a field")
            if problem:
                return problem
    return None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a config value can be the annotated type (ints for floats, lists for sequences)."""
    if hint is Any or value is None and type(None) in typing.get_args(hint):
        return True
    if hint is type(None):   # the None of an optional: any other value is the union's business
        return value is None
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
