"""A stage's slice of the config: the only settings it is handed, and so its cache key.

Each stage module declares `DEPENDS_ON` (dotted config paths) and, where part of a subtree does
not matter, `EXCLUDES`. `select` copies exactly those paths out of the composed config, resolved,
without execution keys or display labels,
into a read-only struct config: a stage that tries to read a setting it did not declare gets an
error instead of a silently incomplete cache key. `key_of` names its `_target_`s by their stable
names (brittle/runtime/names.py), so a key survives moving code, and leaves out values equal to
their defaults (brittle/runtime/defaults.py), so writing a default out in conf/ keeps a key.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from brittle.runtime.defaults import without_defaults
from brittle.runtime.execution import DISPLAY_KEYS, plain, without_execution
from brittle.runtime.names import with_stable_names

# Settings that name files: the same file given by another relative path is the same input.
_PATH_KEYS = ("root",)


def _get(container: dict, path: str) -> Any:
    node: Any = container
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _put(container: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    node = container
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _drop(container: dict, path: str) -> None:
    parts = path.split(".")
    node: Any = container
    for part in parts[:-1]:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(parts[-1], None)


def _canonical(node: Any) -> Any:
    """File settings as absolute paths."""
    if isinstance(node, dict):
        return {k: (str(Path(v).expanduser().resolve()) if k in _PATH_KEYS and isinstance(v, str)
                    else _canonical(v)) for k, v in node.items()}
    return node


def subset_of(cfg: DictConfig, depends_on: Iterable[str], excludes: Iterable[str] = ()) -> dict:
    """The resolved container of `depends_on` paths of cfg, minus `excludes` and execution keys.

    A declared path that the config lacks is recorded as None (e.g. `backbone.checkpoint` of a
    backbone that has none), so the key still distinguishes "absent" from any value."""
    full = without_execution(plain(cfg))
    out: dict = {}
    for path in depends_on:
        try:
            value = _get(full, path)
        except KeyError:
            value = None
        _put(out, path, value)
    for path in (*excludes, *DISPLAY_KEYS):
        _drop(out, path)
    return _canonical(out)


def with_source_arch(cfg: DictConfig) -> DictConfig:
    """The config the models besides the search are trained with: `source_arch` in place of `arch`
    (settings that interpolate `${arch...}`, such as trainer=arch_recipe's recipe, then follow it),
    or cfg itself when no source arch is chosen."""
    if cfg.get("source_arch") is None:
        return cfg
    source = copy.deepcopy(cfg)
    with open_dict(source):
        source.arch = source.source_arch
    return source


def select(cfg: DictConfig, depends_on: Iterable[str], excludes: Iterable[str] = ()) -> DictConfig:
    """`subset_of` as a read-only struct config: reading an undeclared setting raises."""
    node = OmegaConf.create(subset_of(cfg, depends_on, excludes))
    OmegaConf.set_struct(node, True)
    OmegaConf.set_readonly(node, True)
    return node


def settings_of(cfg: DictConfig) -> dict:
    """A selected slice as plain, JSON-ready settings, code named by what it computes (stable
    names), not by the module it lives in."""
    return with_stable_names(OmegaConf.to_container(cfg, resolve=True))


def key_of(cfg: DictConfig) -> dict:
    """The cache-key material of a selected slice: its settings less the values equal to their
    defaults (brittle/runtime/defaults.py), so a default written out or left out is one key."""
    return without_defaults(settings_of(cfg))


def key_digest(cfg: DictConfig) -> str:
    """A short stable digest of a slice's key (names an engine in the timing record)."""
    import hashlib

    from brittle.runtime.files import canonical
    return hashlib.sha256(canonical(key_of(cfg)).encode()).hexdigest()[:16]
