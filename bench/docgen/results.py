"""The results files the docs are generated from: `bench/results/*.json` as bench/record.py writes
them, read from a folder (what `make docs` shows) or from a git commit (what the check compares
against, so a bench that has just written a file never turns the tests red).

A record is refused, named on stderr, when it is not a record (no figures), and when tracked
files differed from its commit as it was measured (`dirty`, or an older file's `+changes`): its
figures are of no commit anyone can check out. `--smoke` records (toy sizes) are left out silently.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path("bench") / "results"
Records = dict[str, dict[str, Any]]
_ABSOLUTE = re.compile(r"(?<![\w:/.])/(?:[\w.+-]+/)*[\w.+-]+")


def texts_in(folder: Path) -> dict[str, str]:
    """{file name: text} of every results file in `folder`."""
    return {p.name: p.read_text() for p in sorted(Path(folder).glob("*.json"))}


def texts_at(root: Path, rev: str = "HEAD") -> dict[str, str]:
    """{file name: text} of the results files commit `rev` holds (untracked files never count)."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True,
                              check=True).stdout
    names = git("ls-tree", "--name-only", f"{rev}:{RESULTS.as_posix()}").split()
    return {name: git("show", f"{rev}:{(RESULTS / name).as_posix()}")
            for name in sorted(names) if name.endswith(".json")}


def dirty(record: dict[str, Any]) -> bool:
    """Whether tracked files differed from the record's commit when it was measured."""
    return bool(record.get("dirty")) or str(record.get("commit") or "").endswith("+changes")


def records(texts: dict[str, str], quiet: bool = False) -> dict[str, dict[str, Any]]:
    """{bench name: record} of the full-size, clean records among `texts`."""
    out: dict[str, dict[str, Any]] = {}
    for name, text in sorted(texts.items()):
        reason = None
        try:
            record = json.loads(text)
        except ValueError as err:
            record, reason = None, f"not JSON ({err})"
        if reason is None and (not isinstance(record, dict)
                               or not isinstance(record.get("figures"), dict)):
            reason = "not a bench record (no figures)"
        elif reason is None and dirty(record):
            reason = (f"measured with uncommitted changes to {str(record.get('commit'))[:7]}; "
                      "rerun the bench on a clean checkout")
        if reason is not None:
            if not quiet:
                print(f"refused {RESULTS / name}: {reason}", file=sys.stderr)
            continue
        assert isinstance(record, dict)
        if record.get("size") == "smoke":
            continue
        record.setdefault("bench", Path(name).stem)
        record["file"] = (RESULTS / name).as_posix()
        out[str(record["bench"])] = record
    return out


def without_paths(text: str) -> str:
    """A command line without the absolute paths of the machine it ran on (`<path>`)."""
    return _ABSOLUTE.sub("<path>", text)


def short_commit(record: dict[str, Any]) -> str:
    commit = str(record.get("commit") or "unknown")
    return commit[:7] if re.fullmatch(r"[0-9a-f]{40}", commit) else commit


def machine_line(machine: dict[str, Any]) -> str:
    """CPU, cores, torch, Python and GPU of a record, in one line."""
    parts = [str(machine.get("cpu") or "unknown CPU")]
    if machine.get("cores") is not None:
        usable = machine.get("cores_usable")
        shown = f"{usable} of {machine['cores']}" if usable not in (None, machine["cores"]) \
            else str(machine["cores"])
        parts.append(f"{shown} cores")
    if machine.get("torch"):
        threads = machine.get("torch_threads")
        shown = f" ({threads} thread{'s' if threads != 1 else ''})" if threads else ""
        parts.append(f"torch {machine['torch']}{shown}")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    parts.append(f"GPU {machine['gpu']}" if machine.get("gpu") else "no GPU")
    return ", ".join(parts)


def source_line(*used: dict[str, Any]) -> str:
    """Where a generated block's figures come from: each file with its machine, date, commit."""
    return "; ".join(f"`{r['file']}`: {machine_line(r.get('machine') or {})}, "
                     f"{str(r.get('date') or 'unknown date')[:10]}, commit {short_commit(r)}"
                     for r in used)
