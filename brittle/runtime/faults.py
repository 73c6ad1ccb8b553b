"""Faults that come from the machine, not from the user's settings: a full disk, a read-only or
unwritable directory, a file system whose file locks do not work, and the signals (SIGTERM from a
scheduler, Ctrl-C) that end a job early. Each becomes one line naming the path, what failed and
what to do; the atomic writes (brittle/runtime/files.py) and the stage cache guarantee that
nothing half-written stays behind, so the same command resumes once the fault is lifted.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from brittle.runtime.errors import BrittleError

RESUME = "rerun the same command to resume"
# What each errno means for the user, and what they can do about it.
_REMEDIES = {
    errno.ENOSPC: ("no space left on the device", "free space there or point {setting} elsewhere"),
    errno.EDQUOT: ("disk quota exceeded", "free space there or point {setting} elsewhere"),
    errno.EROFS: ("read-only file system", "point {setting} at a writable directory"),
    errno.EACCES: ("permission denied", "make it writable or point {setting} elsewhere"),
    errno.EPERM: ("operation not permitted", "make it writable or point {setting} elsewhere"),
}
# A failed write that left less than this free is taken for a full disk: torch and numpy report
# a short write without an errno.
_NEARLY_FULL = 1 << 20


class Interrupted(BaseException):
    """A signal ended the run early (a BaseException so no `except Exception` swallows it, and
    Lightning re-raises it after its own teardown)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def environment_fault(exc: BaseException, roots: Mapping[str, Path]) -> BrittleError | None:
    """The one-line error for an environment fault behind `exc` (its cause chain included), or
    None. `roots` maps a setting (cache_dir, hydra.run.dir) to its directory, so the line can say
    which setting to change."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, OSError) and cur.errno in _REMEDIES:
            return _describe(cur.errno, cur.filename, roots)
        cur, seen = cur.__cause__ or cur.__context__, seen + 1
    return None


def _describe(code: int, filename: object, roots: Mapping[str, Path]) -> BrittleError:
    what, remedy = _REMEDIES[code]
    path = Path(str(filename)) if filename else None
    setting = next((name for name, root in roots.items()
                    if path is not None and _inside(path, Path(root))),
                   "cache_dir or hydra.run.dir")
    where = f" writing {path}" if path is not None else ""
    return BrittleError(f"{what}{where}: {remedy.format(setting=setting)}, then {RESUME}")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


def as_disk_fault(exc: BaseException, path: Path) -> OSError | None:
    """An OSError naming `path` for a write to `path` that failed with `exc`: its own errno when it
    has one, ENOSPC when it has none and the file system is (nearly) full, else None. Called while
    the partial file still exists, so the space it took still counts."""
    if isinstance(exc, OSError) and exc.errno in _REMEDIES:
        return OSError(exc.errno, os.strerror(exc.errno), str(path))
    if isinstance(exc, (OSError, RuntimeError)) and free_bytes(path.parent) < _NEARLY_FULL:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return None


def free_bytes(directory: Path) -> int:
    """Bytes available to this user on the file system holding `directory` (or its nearest
    parent)."""
    directory = Path(directory)
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return 1 << 62  # unknown: let the write itself report


def require_space(directory: Path, nbytes: int, what: str, setting: str = "cache_dir") -> None:
    """Refuse, before the work, a write of `nbytes` that the file system of `directory` cannot
    hold."""
    free = free_bytes(directory)
    if nbytes > free:
        raise BrittleError(f"{what} needs {_size(nbytes)} in {directory} but only "
                           f"{_size(free)} is free: free space there or point {setting} elsewhere")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def check_writable(directory: Path, setting: str, locks: bool = False) -> None:
    """Create `directory` and write (and, with `locks`, flock) a probe file in it: a read-only,
    unwritable or lock-less location fails now, at start-up, not after hours of work."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=directory)
    except OSError as exc:
        fault = as_disk_fault(exc, directory)
        raise _describe_or(fault, exc, setting, directory) from None
    try:
        if locks:
            _probe_lock(fd, directory, setting)
    finally:
        os.close(fd)
        os.unlink(probe)


def _describe_or(fault: OSError | None, exc: OSError, setting: str,
                 directory: Path) -> BrittleError:
    if fault is not None and fault.errno is not None:
        return _describe(fault.errno, directory, {setting: directory})
    return BrittleError(f"{setting}={directory} cannot be written ({exc.strerror or exc}); "
                        f"point {setting} at a writable directory")


def _probe_lock(fd: int, directory: Path, setting: str) -> None:
    """The stage cache serialises writers with flock; where flock fails (some network file
    systems) two jobs could compute one entry at once, so say so instead."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as exc:
        raise BrittleError(f"{setting}={directory}: file locks do not work on this file system "
                           f"({exc.strerror or exc}); put {setting} on a local disk") from None


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise `Interrupted` where the run is, so every
    `finally` cleans up and the caller prints one line. A handler someone else installed (a
    launcher such as submitit handles preemption itself) is left alone."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    defaults = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
    previous = {}
    main_thread = threading.current_thread() is threading.main_thread()  # handlers live there only
    for signum, default in defaults.items():
        if main_thread and signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
