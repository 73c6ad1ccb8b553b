"""Typed checks of a composed configuration's `_target_` nodes against what they build.

The schema of a group option is the signature of its `_target_` (a class's `__init__` or a
function): every key must be a parameter, every value of the annotated type (ints pass for
floats, lists for sequences, None for optionals), and a dict given for a dataclass parameter
(the training `Recipe`) is checked field by field. Returns the first problem as one line.
"""
from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


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


def _signature(target_name: str) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(parameters, type hints, accepts **kwargs) of what `target_name` builds. brittle's own
    targets are read from source when not yet imported (checking a command line must not cost
    the seconds of importing torch, lightly and Lightning); a library's are imported."""
    import sys
    module, _, name = target_name.rpartition(".")
    if module.startswith("brittle.") and module not in sys.modules:
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


_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "None": None, "list": list,
          "tuple": tuple, "dict": dict, "Sequence": collections.abc.Sequence,
          "Mapping": collections.abc.Mapping, "Optional": typing.Optional, "Union": typing.Union,
          "Any": Any, "List": list, "Tuple": tuple, "Dict": dict}


@functools.cache
def _module_tree(module: str) -> Any:
    """The parsed source of a module, or None when it has no plain source file (parsed once:
    a check reads the same modules for several targets and their records)."""
    import ast
    import importlib.util
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return ast.parse(Path(spec.origin).read_text())


def _records(module: str, tree: Any) -> dict[str, type]:
    """The dataclasses an annotation of `module` may name (its own, or imported from a brittle
    module), rebuilt from their source as field -> hint records, so a dict given for one (a
    recipe) is checked field by field without importing anything."""
    import ast
    import dataclasses
    found: dict[str, type] = {}
    sources = [(module, tree, None)] + [(str(n.module), None,
                                         {a.asname or a.name: a.name for a in n.names})
                                        for n in tree.body if isinstance(n, ast.ImportFrom)
                                        and (n.module or "").startswith("brittle.")]
    for source, parsed, names in sources:
        parsed = parsed if parsed is not None else _module_tree(source)
        for node in parsed.body if parsed is not None else []:
            if not (isinstance(node, ast.ClassDef) and any("dataclass" in ast.unparse(d)
                                                           for d in node.decorator_list)):
                continue
            local = (node.name if names is None
                     else next((k for k, v in names.items() if v == node.name), None))
            if local is None:
                continue
            fields = [(a.target.id, _hint(a.annotation, {}) or Any, dataclasses.field(default=None))
                      for a in node.body if isinstance(a, ast.AnnAssign)
                      and isinstance(a.target, ast.Name)
                      and "ClassVar" not in ast.unparse(a.annotation)]
            found[local] = dataclasses.make_dataclass(node.name, fields)
    return found


def _hint(annotation: Any, extra: dict[str, Any]) -> Any:
    """An annotation written in source, evaluated over plain names (None when it names others)."""
    import ast
    try:
        return eval(compile(ast.Expression(annotation), "<hint>", "eval"), {"__builtins__": {}},
                    {**_NAMES, **extra})
    except Exception:  # a name this reader does not know: the key is still checked
        return None


def _source_signature(module: str, name: str) -> tuple[dict[str, Any], dict[str, Any], bool] | None:
    """The parameters and simple annotations of `name` (a class's __init__, or a function) as
    written in the module's source; None when it is not plainly there (a dataclass, whose
    __init__ is generated, or an inherited one: those are imported)."""
    import ast
    tree = _module_tree(module)
    if tree is None:
        return None
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
                 and n.name == name), None)
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef)
                     and n.name == "__init__"), None)
    if node is None:
        return None
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    params = {a.arg: a for a in args if a.arg != "self"}
    records = _records(module, tree)
    hints = {a.arg: h for a in args if a.annotation is not None
             and (h := _hint(a.annotation, records)) is not None}
    return params, hints, node.args.kwarg is not None


def _check_node(path: str, node: dict) -> str | None:
    try:
        params, hints, open_kwargs = _signature(node["_target_"])
    except Exception:
        return f"{path}_target_={node['_target_']} cannot be imported; check the option's YAML file"
    for key, value in node.items():
        if key.startswith("_") or key == "name":
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
            return (f"{path}{key}={item!r} has the wrong type: {record.__name__} expects "
                    f"{_type_name(hints[key])}")
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

