"""Files a run writes and reads: atomic writes, run-directory arrays, canonical JSON, user-handed
torch files, and the binding of a run directory to one config.

Every file the tool writes goes through a temp file in the same directory and an `os.replace`,
so a reader never sees a half-written artifact.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brittle.runtime.defaults import without_defaults
from brittle.runtime.errors import BrittleError
from brittle.runtime.faults import as_disk_fault

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as exc:
        fault = as_disk_fault(exc, path)  # checked while the partial file still takes its space
        if fault is not None:
            raise fault from exc
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def load_npy(path: Path) -> np.ndarray | None:
    """A run-directory array, or None (with a warning) when it is missing or unreadable: the stage
    that wrote it recomputes it instead of trusting a damaged file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return np.load(path)
    except Exception as exc:  # a truncated or overwritten file
        log.warning("%s is unreadable (%s); recomputing it", path, type(exc).__name__)
        return None


def save_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def save_parquet(path: Path, frame: Any) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical(spec: Any) -> str:
    """Canonical JSON of a config slice: the same config always gives the same string."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=json_default)


def read_torch_file(path: Path, setting: str, expected: str, trust: bool = False,
                    trust_setting: str | None = None) -> object:
    """torch.load of a file the user handed in, without running code from it.

    Unpickling can call any function a file names, so a downloaded checkpoint is read with
    `weights_only=True`: tensors, containers and plain values, plus the harmless types release
    checkpoints carry (`SAFE_TYPES`). A file that needs more is refused with one line naming
    what it holds and `trust_setting`, the opt-in that loads it with full unpickling."""
    import torch

    if trust:
        return _torch_load(path, setting, expected, weights_only=False)
    with torch.serialization.safe_globals(list(SAFE_TYPES)):
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and torch raise many types for a non-torch file
            failure = exc
    unsafe = _unsafe_globals(path, failure)
    if not unsafe:
        raise _not_torch_file(path, setting, expected, failure) from None
    opt_in = f"if you trust the file, set {trust_setting}=true" if trust_setting else \
        "re-save its tensors with torch.save(state_dict)"
    raise BrittleError(f"{setting}={path} holds {', '.join(unsafe[:3])}, which loading "
                       f"would have to run as code; refused ({opt_in})")


# Non-tensor types of release checkpoints that carry data only (DINO and MoCo v3 keep their
# training arguments as an argparse.Namespace).
SAFE_TYPES = (argparse.Namespace,)


def _torch_load(path: Path, setting: str, expected: str, weights_only: bool) -> object:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:  # pickle, zip and torch raise many types for a file that is not one
        raise _not_torch_file(path, setting, expected, exc) from None


def _unsafe_globals(path: Path, failure: Exception) -> list[str]:
    """The functions and classes a torch file would import to unpickle, from torch's refusal
    ("Unsupported global: GLOBAL x.y") or a scan of the archive; none: not a refusal."""
    import torch

    if not isinstance(failure, pickle.UnpicklingError):
        return []
    named = re.findall(r"GLOBAL ([\w.]+)", str(failure))
    try:
        with torch.serialization.safe_globals(list(SAFE_TYPES)):
            scanned = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip archive (a legacy torch file, or not a torch file)
        scanned = []
    return list(dict.fromkeys(scanned or named))


def _not_torch_file(path: Path, setting: str, expected: str, exc: object) -> BrittleError:
    reason = " ".join(str(exc).split())[:120] or type(exc).__name__
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
    return BrittleError(f"{setting}={path} is not a PyTorch file ({kind}: {reason}); "
                        f"give {expected}")


# run_spec.json's record of the cache schema the run was written under (brittle.CACHE_SCHEMA)
SCHEMA_FIELD = "brittle_schema"


def check_run_dir(run_dir: Path, run_spec: dict) -> None:
    """Bind a run directory to one config: reuse it to resume, refuse it for another config or
    one recorded under an earlier cache schema (whose files may mean something else)."""
    from brittle import CACHE_SCHEMA

    record = Path(run_dir) / "run_spec.json"
    if record.exists():
        recorded = json.loads(record.read_text())
        schema = recorded.pop(SCHEMA_FIELD, None)
        if schema != CACHE_SCHEMA:
            raise BrittleError(
                f"run directory {run_dir} predates brittle's schema {CACHE_SCHEMA} (it was "
                f"written under {schema or 'an earlier one'}) and cannot resume; delete it or "
                f"choose another hydra.run.dir")
        # a default written out in one and left out in the other is the same run
        recorded = without_defaults(recorded)
        wanted = without_defaults(json.loads(canonical(run_spec)))
        if canonical(recorded) != canonical(wanted):
            raise BrittleError(
                f"run directory {run_dir} holds results of a different config; "
                f"choose another hydra.run.dir or delete it to start over"
            )
        return
    save_json(record, {SCHEMA_FIELD: CACHE_SCHEMA, **run_spec})
