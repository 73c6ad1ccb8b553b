"""Where brittle's configs are: the `brittle.conf` package data of an installed brittle (a wheel
maps the repository's top-level conf/ onto it), else the checkout's conf/ beside brittle/.

Every reader of the configs (the Hydra app, the command-line check, `--help`, the tests) asks
here, so a wheel, an editable install and a plain checkout compose the same files.
"""
from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path


@cache
def config_dir() -> Path:
    """The directory holding config.yaml and the config groups."""
    spec = importlib.util.find_spec("brittle.conf")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / "config.yaml").is_file():
                return Path(location)
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if (checkout / "config.yaml").is_file():
        return checkout
    raise FileNotFoundError("brittle's configs (brittle.conf) are missing: reinstall brittle")


def groups(*roots: Path | str) -> dict[str, list[str]]:
    """Every config group (`backbone/method`, ...) of conf/, or of `roots` merged (brittle's and a
    user's `--config-dir`), and its options, sorted: not hydra/, nor a folder whose name starts
    with `_` (conf/_common/: settings several options share, which no command line chooses and a
    `glob(*)` sweep of a group must not find among its options)."""
    found: dict[str, set[str]] = {}
    for root in map(Path, roots or (config_dir(),)):
        for d in root.rglob("*") if root.is_dir() else ():
            parts = d.relative_to(root).parts
            if d.is_dir() and not any(p == "hydra" or p.startswith("_") for p in parts):
                found.setdefault("/".join(parts), set()).update(f.stem for f in d.glob("*.yaml"))
    return {group: sorted(names) for group, names in sorted(found.items())}
