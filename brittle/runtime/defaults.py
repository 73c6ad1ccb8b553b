"""Values equal to their defaults leave cache keys and run identities, so that conf/ can write
every setting out (`--cfg job` shows it, a command line sets it without `+`) and writing a
default out, or leaving it out, is the same computation under the same key.

What a default is:
- an argument of a `_target_` (brittle's own, named by import path or stable name, and a
  library's alike): the default of that parameter in the callable's signature, as installed;
- a field of a dataclass a `_target_` parameter is annotated with (the training `Recipe` of a
  trainer), given as a dict: the field's default; the same for the nodes of `RECORDS`, which
  hold such a dataclass's fields outside any `_target_` (an arch's recipe);
- a setting that is no argument of anything (`backbone.compile`, read by the pretraining):
  its value in `SETTING_DEFAULTS`, the one place that declares it. The code reads the setting
  from the config, where conf/ always writes it; the table only says which value keys omit.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any

# Settings outside any `_target_`'s arguments -> the value that keys leave out (dotted paths
# from the config's top level: stage slices keep those paths)
SETTING_DEFAULTS: dict[str, Any] = {
    "backbone.compile": False,         # brittle/ssl/speed.py: no torch.compile
    "backbone.features": "backbone",   # brittle/ssl/features.py: the backbone's own output
}
# Nodes holding the fields of a dataclass (import path) outside a `_target_`: an arch's recipe,
# which trainer=arch_recipe is handed by interpolation
RECORDS: dict[str, str] = {
    "arch.recipe": "brittle.retrain.recipe.Recipe",
    "source_arch.recipe": "brittle.retrain.recipe.Recipe",
}


def without_defaults(node: Any, path: str = "") -> Any:
    """A resolved config container (a copy; `path`: where it sits in the config, '' for the top)
    without the values equal to their defaults."""
    if isinstance(node, list):
        return [without_defaults(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: without_defaults(v, f"{path}{k}.") for k, v in node.items()}
    defaults = dict(record_defaults(RECORDS[path[:-1]])) if path[:-1] in RECORDS else {}
    target = out.get("_target_")
    if isinstance(target, str):
        params, records = signature_defaults(target)
        defaults.update(params)
        for key, record in records.items():
            if isinstance(out.get(key), dict):
                fields = record_defaults(record)
                out[key] = {k: v for k, v in out[key].items()
                            if k not in fields or not _same(v, fields[k])}
    defaults.update({k.rpartition(".")[2]: v for k, v in SETTING_DEFAULTS.items()
                     if k.rpartition(".")[0] == path[:-1]})
    return {k: v for k, v in out.items() if k not in defaults or not _same(v, defaults[k])}


def _same(value: Any, default: Any) -> bool:
    """Equal as JSON holds them (tuples as lists), a bool never equal to a number."""
    value, default = _plain(value), _plain(default)
    return isinstance(value, bool) == isinstance(default, bool) and value == default


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


@functools.cache
def signature_defaults(target: str) -> tuple[dict[str, Any], dict[str, type]]:
    """(parameter -> default, parameter -> the dataclass its annotation admits) of a `_target_`
    (a stable name `brittle:...` or an import path); empty when it cannot be imported."""
    from hydra.utils import get_object

    from brittle.runtime.names import PREFIX, REGISTERED

    path = REGISTERED.get(target.removeprefix(PREFIX), target) if target.startswith(PREFIX) \
        else target
    try:
        obj = get_object(path)
        params = inspect.signature(obj).parameters
    except Exception:  # not importable, or no signature: every argument counts
        return {}, {}
    fn = obj.__init__ if inspect.isclass(obj) else obj
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # a library's annotations that do not resolve here
        hints = {}
    records = {name: record for name, hint in hints.items()
               if name != "return" and (record := dataclass_in(hint)) is not None}
    return ({p.name: p.default for p in params.values() if p.default is not p.empty}, records)


def dataclass_in(hint: Any) -> type | None:
    """The dataclass an annotation admits (`Recipe | Mapping[str, Any]`), or None."""
    for h in (hint, *typing.get_args(hint)):
        if isinstance(h, type) and dataclasses.is_dataclass(h):
            return h
    return None


@functools.cache
def record_defaults(record: type | str) -> dict[str, Any]:
    """field -> default of a dataclass (or of the one at an import path)."""
    if isinstance(record, str):
        from hydra.utils import get_object
        record = get_object(record)
    return {f.name: f.default for f in dataclasses.fields(record)  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING}
