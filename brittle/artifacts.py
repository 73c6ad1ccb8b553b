"""Artifact storage: atomic writes, the content-addressed stage cache, and run-directory checks.

Every file the tool writes goes through a temp file in the same directory and an `os.replace`,
so a reader never sees a half-written artifact. Expensive stage outputs (backbone checkpoints,
embeddings, reference models) live in a cache keyed by the hash of the config they depend on;
a cached directory whose recorded config differs from the one asked for is an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from filelock import FileLock, Timeout

from brittle import CACHE_SCHEMA, __version__
from brittle.errors import BrittleError

log = logging.getLogger(__name__)

_LIBRARIES = ("torch", "torchvision", "numpy", "scikit-learn", "lightly", "pytorch-lightning")


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
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def save_parquet(path: Path, frame: "Any") -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _json_default(obj: Any) -> Any:
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
    """Canonical JSON of a config subset: the same config always gives the same string."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=_json_default)


def library_versions() -> dict[str, str]:
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


class StageCache:
    """Content-addressed directories `root/<stage>/<key>/`, one per distinct stage config."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def key(self, stage: str, spec: dict) -> str:
        material = canonical({"stage": stage, "schema": CACHE_SCHEMA, "spec": spec})
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def path(self, stage: str, spec: dict) -> Path:
        return self.root / stage / self.key(stage, spec)

    def lookup(self, stage: str, spec: dict) -> Path | None:
        """The finished directory for this config, or None. Raises if its record disagrees."""
        final = self.path(stage, spec)
        meta_file = final / "meta.json"
        if not meta_file.exists():
            return None
        try:
            recorded = json.loads(meta_file.read_text())
            _verify_files(final)
        except Exception as exc:  # a file cut short or overwritten: recompute, never use it
            log.warning("cached %s artifact %s is corrupted (%s: %s); recomputing it", stage, final,
                        type(exc).__name__, " ".join(str(exc).split())[:100])
            shutil.rmtree(final, ignore_errors=True)
            return None
        wanted = json.loads(canonical(spec))
        if canonical(recorded.get("spec")) != canonical(wanted):
            diff = _differences(recorded.get("spec"), wanted)
            raise BrittleError(
                f"cached {stage} artifact {final} was made with a different config "
                f"({'; '.join(diff[:3])}); delete that directory or point cache_dir elsewhere")
        return final

    def get_or_compute(self, stage: str, spec: dict, compute: Callable[[Path], dict | None]) -> Path:
        """Return the cached directory, computing it once (under a file lock) when missing.

        `compute(tmpdir)` writes its files into `tmpdir` and may return extra metadata; the
        directory is renamed into place only after it returns, together with `meta.json`.
        """
        hit = self.lookup(stage, spec)
        if hit is not None:
            log.info("cache hit: %s %s", stage, hit)
            return hit
        final = self.path(stage, spec)
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock"):
            hit = self.lookup(stage, spec)  # another process may have finished meanwhile
            if hit is not None:
                log.info("cache hit (after wait): %s %s", stage, hit)
                return hit
            _collect_garbage(final.parent)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
            try:
                log.info("computing %s -> %s", stage, final)
                extra = compute(tmp) or {}
                meta = {"stage": stage, "spec": spec, "brittle_version": __version__,
                        "libraries": library_versions(), **extra}
                save_json(tmp / "meta.json", meta)
                if final.exists():  # a leftover without meta.json: an interrupted older write
                    shutil.rmtree(final)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return final

    @staticmethod
    def meta(directory: Path) -> dict:
        return json.loads((Path(directory) / "meta.json").read_text())


def _verify_files(directory: Path) -> None:
    """Raise if an artifact file of a cache directory is unreadable: .npy headers against their
    size, .npz and .pt (zip) archives against their checksums."""
    import zipfile
    for path in Path(directory).iterdir():
        if path.suffix == ".npy":
            np.load(path, mmap_mode="r")
        elif path.suffix in (".npz", ".pt"):
            with zipfile.ZipFile(path) as archive:
                broken = archive.testzip()
            if broken is not None:
                raise ValueError(f"{path.name}: member {broken} fails its checksum")


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def _differences(recorded: Any, wanted: Any) -> list[str]:
    """'key: recorded X, asked Y' for every leaf that differs between two config records."""
    a, b = _flatten(recorded or {}), _flatten(wanted or {})
    return [f"{k}: recorded {a.get(k)!r}, asked {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)] or ["records differ"]


def _collect_garbage(stage_dir: Path) -> None:
    """Remove temp directories of killed writers: those whose key's lock nobody holds."""
    for tmp in stage_dir.glob(".*"):
        key = tmp.name[1:].split(".", 1)[0]
        if not tmp.is_dir() or not key:
            continue
        lock = FileLock(str(stage_dir / f"{key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # its writer is alive
        try:
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            lock.release()


def check_run_dir(run_dir: Path, run_spec: dict) -> None:
    """Bind a run directory to one config: reuse it to resume, refuse it for another config."""
    record = Path(run_dir) / "run_spec.json"
    if record.exists():
        recorded = json.loads(record.read_text())
        if canonical(recorded) != canonical(json.loads(canonical(run_spec))):
            raise BrittleError(
                f"run directory {run_dir} holds results of a different config; "
                f"choose another hydra.run.dir or delete it to start over"
            )
        return
    save_json(record, run_spec)
