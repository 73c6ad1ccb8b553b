"""What every bench writes besides the lines it prints: `bench/results/<name>.json` with the
machine (CPU model and cores, torch version, GPU when there is one), the date, the git commit,
whether tracked files differed from it (`dirty`: such figures are of no commit, and the docs
refuse them) and every figure. A `--smoke` run (toy sizes: it checks that the bench still runs,
its figures mean nothing) writes to `--out` or a temporary file instead, so tests never touch
bench/results.
The file is rewritten after every figure, so a bench stopped halfway keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--smoke and --out, the same for every bench."""
    parser.add_argument("--smoke", action="store_true",
                        help="toy sizes, a fresh cache: checks that the bench runs "
                             "(its figures mean nothing)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the figures go (default bench/results/<name>.json; with "
                             "--smoke a temporary file)")


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    """--cache, for the benches that share brittle's cache with `python run.py`."""
    default = os.environ.get("BRITTLE_CACHE", str(ROOT / ".cache/brittle"))
    parser.add_argument("--cache", default=default,
                        help="brittle's cache (default: $BRITTLE_CACHE or .cache/brittle)")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import torch
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cores_usable": usable,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def git_commit() -> str | None:
    """The checkout's commit (None outside a git checkout)."""
    try:
        return _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (None outside a git checkout), or the configs
    brittle composes are not this checkout's (an editable install of another checkout finds its
    own `brittle.conf`). What benches write (bench/results, the docs and their figures) does not
    count: an earlier bench of the same session changes no code."""
    from brittle.cli.configs import config_dir
    if not config_dir().resolve().is_relative_to(ROOT):
        print(f"warning: brittle reads its configs from {config_dir()}, not this checkout's: "
              "the figures are recorded as dirty", file=sys.stderr)
        return True
    try:
        return bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".",
                         ":(exclude)bench/results", ":(exclude)docs"))
    except (OSError, subprocess.CalledProcessError):
        return None


def command_line(argv: list[str]) -> str:
    """How the bench was started, as typed in the checkout's root: `python bench/x.py ...`, the
    checkout's own paths relative to it."""
    def shown(arg: str) -> str:
        path = Path(arg)
        if path.is_absolute() and path.is_relative_to(ROOT):
            return str(path.relative_to(ROOT))
        return arg
    return " ".join(["python", *(shown(a) for a in argv)])


class Record:
    """The figures of one bench run, written as JSON after each `add`."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.smoke = bool(args.smoke)
        if args.out is not None:
            self.path = Path(args.out)
        elif self.smoke:
            self.path = Path(tempfile.gettempdir()) / "brittle-bench-smoke" / f"{name}.json"
        else:
            self.path = RESULTS / f"{name}.json"
        self.data: dict[str, Any] = {
            "bench": name, "size": "smoke" if self.smoke else "full",
            "command": command_line(sys.argv),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": git_commit(), "dirty": git_dirty(), "machine": machine(), "figures": {}}

    def add(self, **figures: Any) -> None:
        self.data["figures"].update(figures)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_plain) + "\n")
        tmp.replace(self.path)

    def done(self) -> None:
        self.add()
        print(f"figures written to {self.path}", flush=True)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
