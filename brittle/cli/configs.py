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


def groups(root: Path | None = None) -> dict[str, list[str]]:
    """Every config group (`backbone/method`, ...) outside hydra/ and its options, sorted."""
    root = root or config_dir()
    return {str(d.relative_to(root)): sorted(p.stem for p in d.glob("*.yaml"))
            for d in sorted(root.rglob("*")) if d.is_dir()
            and "hydra" not in d.relative_to(root).parts
            and d.name != "__pycache__"}
