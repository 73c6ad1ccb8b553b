"""Test indices a user names (`targets.indices`): a list, or the path of a file of them.

A file is `.npy` (an integer array [T], or [T, 1]), `.txt` (indices separated by whitespace, one
a line or several; `#` starts a comment) or `.csv` (one column, an optional header line).
`read_indices` returns them as int64 [T] in the given order, or raises one BrittleError line
naming the list or file, its bad values and what is valid: a value that is not an integer (a
float with a fraction, a string), a repeated index, no index at all, a file that is missing or
cannot be read. Whether they lie in the test set, and in which order they count its images, is
the dataset's to say (brittle/stages/targets.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brittle.runtime.errors import BrittleError

SUFFIXES = (".npy", ".txt", ".csv")
SETTING = "targets.indices"
_SHOWN = 5   # bad values an error line names
_FORMS = ("give a list [i, j, ...] or the path of a .npy (integer array), .txt (one index a "
          "line) or .csv (one column) file of test indices")


def read_indices(value: Any) -> np.ndarray:
    """Test indices int64 [T] of a list, or of the file a string names, checked as the module
    says (not against a test set)."""
    if isinstance(value, (str, Path)):
        where = f"{SETTING}={value}"
        raw = _read_file(Path(value).expanduser(), where)
    elif isinstance(value, (Sequence, np.ndarray)):
        where, raw = SETTING, list(value)
    else:
        raise BrittleError(f"{SETTING}={value!r} is not valid; {_FORMS}")
    return _checked(raw, where)


def source_of(value: Any) -> str:
    """How error lines name the indices: the setting, with the file when one is given."""
    return f"{SETTING}={value}" if isinstance(value, (str, Path)) else SETTING


def shown(values: Sequence[Any] | np.ndarray) -> str:
    """At most five values for an error line, with how many more there are."""
    head = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in list(values)[:_SHOWN])
    more = len(values) - _SHOWN
    return f"{head} (and {more} more)" if more > 0 else head


def _checked(raw: list[Any], where: str) -> np.ndarray:
    bad = [_plain(v) for v in raw if not _integral(v)]
    if bad:
        raise BrittleError(f"{where} holds {shown(bad)}, not integer test indices; give "
                           "integers, each index once")
    if not raw:
        raise BrittleError(f"{where} holds no indices; give at least one test index")
    idx = np.array([int(v) for v in raw], dtype=np.int64)
    values, counts = np.unique(idx, return_counts=True)
    repeated = values[counts > 1]
    if len(repeated):
        raise BrittleError(f"{where} repeats test index {shown(repeated)}; give each index once")
    return idx


def _integral(v: Any) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return True
    return isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it prints as."""
    return v.item() if isinstance(v, np.generic) else v


def _read_file(path: Path, where: str) -> list[Any]:
    if path.suffix.lower() not in SUFFIXES:
        raise BrittleError(f"{where} is not a .npy, .txt or .csv file; {_FORMS}")
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise BrittleError(f"{where} {state}; {_FORMS}")
    try:
        if path.suffix.lower() == ".npy":
            return _npy_values(np.load(path, allow_pickle=False), where)
        text = path.read_text()
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise BrittleError(f"{where} cannot be read ({reason}); {_FORMS}") from None
    if path.suffix.lower() == ".csv":
        return _csv_values(text, where)
    return [_token(t) for line in text.splitlines() for t in line.split("#", 1)[0].split()]


def _npy_values(arr: np.ndarray, where: str) -> list[Any]:
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise BrittleError(f"{where} holds an array of shape {tuple(arr.shape)}; give a 1-D "
                           "array of test indices [T]")
    return arr.tolist()


def _csv_values(text: str, where: str) -> list[Any]:
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    wide = next((i for i, row in enumerate(rows) if len(row.split(",")) > 1), None)
    if wide is not None:
        raise BrittleError(f"{where} has {len(rows[wide].split(','))} columns on row {wide + 1}; "
                           "give one column of test indices")
    values = [_token(row.strip("\"'")) for row in rows]
    # a first row that is not a number names the column
    return values[1:] if values and isinstance(values[0], str) else values


def _token(text: str) -> Any:
    """A number as written (an int, else a float), or the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
