"""The content-addressed stage cache: `root/<stage>/<key>/`, one directory per distinct stage
config.

Expensive stage outputs (decoded datasets, backbone checkpoints, embeddings, reference and
scorer models, subset banks) are keyed by the hash of the config slice they depend on (with
stable names for code, brittle/runtime/names.py). A directory is written under a file lock into a
temp directory and renamed into place with its `meta.json`; a cached directory whose recorded
config differs from the one asked for is an error, a damaged one is recomputed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from brittle import CACHE_SCHEMA, __version__
from brittle.runtime.errors import BrittleError
from brittle.runtime.faults import as_disk_fault
from brittle.runtime.files import canonical, save_json

log = logging.getLogger(__name__)

_LIBRARIES = ("torch", "torchvision", "numpy", "scikit-learn", "lightly", "pytorch-lightning")


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

    def key(self, stage: str, material: dict) -> str:
        # "spec" is the key material's field name in every cache written so far (meta.json too):
        # renaming it would move every cached artifact
        text = canonical({"stage": stage, "schema": CACHE_SCHEMA, "spec": material})
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def path(self, stage: str, material: dict) -> Path:
        return self.root / stage / self.key(stage, material)

    def partial(self, stage: str, material: dict) -> Path:
        """Where a long computation of this entry keeps its progress between attempts (e.g. the
        pretraining's last checkpoint); removed once the entry is complete."""
        final = self.path(stage, material)
        return final.with_name(final.name + ".partial")

    def lookup(self, stage: str, material: dict) -> Path | None:
        """The finished directory for this config, or None. Raises if its record disagrees."""
        final = self.path(stage, material)
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
        wanted = json.loads(canonical(material))
        if canonical(recorded.get("spec")) != canonical(wanted):
            diff = _differences(recorded.get("spec"), wanted)
            raise BrittleError(
                f"cached {stage} artifact {final} was made with a different config "
                f"({'; '.join(diff[:3])}); delete that directory or point cache_dir elsewhere")
        return final

    def get_or_compute(self, stage: str, material: dict,
                       compute: Callable[[Path], dict | None]) -> Path:
        """Return the cached directory, computing it once (under a file lock) when missing.

        `compute(tmpdir)` writes its files into `tmpdir` and may return extra metadata; the
        directory is renamed into place only after it returns, together with `meta.json`.
        """
        hit = self.lookup(stage, material)
        if hit is not None:
            log.info("cache hit: %s %s", stage, hit)
            return hit
        final = self.path(stage, material)
        final.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(final) + ".lock"):
            hit = self.lookup(stage, material)  # another process may have finished meanwhile
            if hit is not None:
                log.info("cache hit (after wait): %s %s", stage, hit)
                return hit
            _collect_garbage(final.parent)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
            try:
                log.info("computing %s -> %s", stage, final)
                _fill(tmp, final, stage, material, compute)
                if final.exists():  # a leftover without meta.json: an interrupted older write
                    shutil.rmtree(final)
                os.replace(tmp, final)
                shutil.rmtree(self.partial(stage, material), ignore_errors=True)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return final

    def earlier_schema(self) -> int:
        """How many finished entries were written under an earlier cache schema: their keys
        can never match again, so they only take disk space."""
        stale = 0
        for meta_file in self.root.glob("*/*/meta.json"):
            try:
                stale += json.loads(meta_file.read_text()).get("schema") != CACHE_SCHEMA
            except (OSError, ValueError):
                continue
        return stale

    def warn_earlier_schema(self) -> None:
        """One warning line when the cache holds entries of an earlier schema."""
        stale = self.earlier_schema()
        if stale:
            log.warning("cache_dir %s holds %d entries of an earlier cache schema (this brittle "
                        "writes schema %d); they are never reused: delete them to free the disk "
                        "(make clean-cache removes the default cache)", self.root, stale,
                        CACHE_SCHEMA)

    @staticmethod
    def meta(directory: Path) -> dict:
        return json.loads((Path(directory) / "meta.json").read_text())


def _fill(tmp: Path, final: Path, stage: str, material: dict,
          compute: Callable[[Path], dict | None]) -> None:
    """Run `compute` into `tmp` and record its meta.json; a write that failed on a full disk is
    an OSError naming the entry (checked before the temp directory is removed)."""
    try:
        extra = compute(tmp) or {}
        meta = {"stage": stage, "schema": CACHE_SCHEMA, "spec": material,
                "brittle_version": __version__,
                "libraries": library_versions(), **extra}
        save_json(tmp / "meta.json", meta)
    except Exception as exc:
        fault = as_disk_fault(exc, final)
        if fault is not None:
            raise fault from exc
        raise


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
