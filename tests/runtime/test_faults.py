"""Faults from the machine through the real command line: a full disk under the cache and under
the run directory, a read-only cache and run directory, a cache whose file locks fail, SIGTERM
in pretraining and in the search. Each: a non-zero exit, exactly one `error:` line and no
traceback; then, with the fault lifted, the same command gives the tables of an undisturbed run.

The full and read-only disks are small tmpfs mounts in a private user and mount namespace
(`unshare`); where that cannot be made, those tests skip.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ROOT, TINY

pytestmark = pytest.mark.slow

ARGS = [*TINY, "arch.recipe.epochs=15", "targets.n=3"]
NAMESPACE = ["unshare", "--user", "--map-root-user", "--mount"]


def _command(cache: Path, run_dir: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "run.py", *ARGS, *extra, f"cache_dir={cache}",
            f"hydra.run.dir={run_dir}"]


def _tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run_dir / name).drop(columns="seconds", errors="ignore")
            for name in ("support.parquet", "tests.parquet")}


def _assert_same_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def _one_error_line(stderr: str, *fragments: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory) -> dict[str, pd.DataFrame]:
    base = tmp_path_factory.mktemp("undisturbed")
    done = subprocess.run(_command(base / "cache", base / "run"), cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return _tables(base / "run")


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory) -> None:
    probe = tmp_path_factory.mktemp("probe")
    made = subprocess.run([*NAMESPACE, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {probe}"],
                          capture_output=True, timeout=60)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs in a user namespace here "
                    f"({made.stderr.decode().strip()[:100]})")


def _faulted_then_lifted(tmp_path: Path, mount: str, lift: str, cache: Path,
                         run_dir: Path) -> list[str]:
    """Run the command on a fresh tmpfs at tmp_path/m (mount options `mount`), remount it with
    `lift`, run the same command again; the tables are copied out before the namespace ends.
    Returns the stderr of both runs, and their exit statuses as the last line of each."""
    m = tmp_path / "m"
    m.mkdir()
    cmd = shlex.join(_command(cache, run_dir))
    script = f"""
        mount -t tmpfs -o {mount} tmpfs {m} || exit 90
        {cmd} > {tmp_path}/out1 2> {tmp_path}/err1; echo $? > {tmp_path}/rc1
        mount -o remount,{lift} {m} || exit 91
        {cmd} > {tmp_path}/out2 2> {tmp_path}/err2; echo $? > {tmp_path}/rc2
        mkdir -p {tmp_path}/tables &&
            cp {run_dir}/support.parquet {run_dir}/tests.parquet {tmp_path}/tables/
    """
    done = subprocess.run([*NAMESPACE, "sh", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return [(tmp_path / f"err{i}").read_text() + (tmp_path / f"rc{i}").read_text() for i in (1, 2)]


def _check(tmp_path: Path, outcome: list[str], undisturbed: dict, *fragments: str) -> str:
    first, second = outcome
    *err1, rc1 = first.rstrip("\n").split("\n")
    *err2, rc2 = second.rstrip("\n").split("\n")
    assert rc1 not in ("0", "135"), first[-2000:]  # failed, and not by SIGBUS
    line = _one_error_line("\n".join(err1), *fragments)
    assert rc2 == "0", second[-2000:]
    _assert_same_tables(_tables(tmp_path / "tables"), undisturbed)
    return line


def test_cache_on_a_full_disk(tmp_path, namespaces, undisturbed):
    m = tmp_path / "m"
    outcome = _faulted_then_lifted(tmp_path, "size=600k", "size=64m", m / "cache", tmp_path / "run")
    _check(tmp_path, outcome, undisturbed, "needs", "free", "cache_dir")


def test_cache_filling_up_while_written(tmp_path, namespaces, undisturbed):
    """Enough room for the start-up checks, too little once pretraining has written its entry:
    the reservation of the embeddings' file fails (never a SIGBUS from a memory map)."""
    m = tmp_path / "m"
    outcome = _faulted_then_lifted(tmp_path, "size=1100k", "size=64m", m / "cache",
                                   tmp_path / "run")
    _check(tmp_path, outcome, undisturbed, "no space left on the device writing", "cache_dir",
           "resume")


def test_a_short_write_is_named_as_a_full_disk(tmp_path, namespaces):
    """torch.save reports a short write as a bare RuntimeError and np.save as an OSError without
    errno: both become ENOSPC naming the cache entry or the file, and leave nothing behind."""
    m = tmp_path / "m"
    m.mkdir()
    code = f"""
import errno, numpy as np, torch
from pathlib import Path
from brittle.runtime.cache import StageCache
from brittle.runtime.files import save_npy
cache = StageCache(Path("{m}/cache"))
for name, write in (("torch", lambda tmp: torch.save(torch.zeros(200_000), tmp / "w.pt")),
                    ("numpy", lambda tmp: np.save(open(tmp / "w.npy", "wb"), np.zeros(200_000)))):
    try:
        cache.get_or_compute(name, {{}}, write)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC and exc.filename == str(cache.path(name, {{}})), exc
        print(name, "ENOSPC")
try:
    save_npy(Path("{m}/run/a.npy"), np.zeros(200_000))
except OSError as exc:
    assert exc.errno == errno.ENOSPC and exc.filename == "{m}/run/a.npy", exc
    print("save_npy ENOSPC")
left = [p.name for p in Path("{m}").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
print("left", left)
"""
    script = (f"mount -t tmpfs -o size=400k tmpfs {m} && "
              f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}")
    done = subprocess.run([*NAMESPACE, "sh", "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:4] == ["torch ENOSPC", "numpy ENOSPC", "save_npy ENOSPC",
                                           "left []"]


def test_run_directory_on_a_full_disk(tmp_path, namespaces, undisturbed):
    m = tmp_path / "m"
    outcome = _faulted_then_lifted(tmp_path, "size=48k", "size=64m", tmp_path / "cache", m / "run")
    _check(tmp_path, outcome, undisturbed, "no space left on the device writing", "hydra.run.dir",
           "resume")


def test_read_only_cache(tmp_path, namespaces, undisturbed):
    m = tmp_path / "m"
    outcome = _faulted_then_lifted(tmp_path, "ro,size=64m", "rw", m / "cache", tmp_path / "run")
    _check(tmp_path, outcome, undisturbed, "read-only file system", "cache_dir")


def test_read_only_run_directory(tmp_path, namespaces, undisturbed):
    m = tmp_path / "m"
    outcome = _faulted_then_lifted(tmp_path, "ro,size=64m", "rw", tmp_path / "cache", m / "run")
    _check(tmp_path, outcome, undisturbed, "read-only file system", "hydra.run.dir")


def test_cache_where_file_locks_fail(tmp_path, undisturbed):
    """A network file system without flock, simulated by a sitecustomize that makes flock fail
    with ENOLCK (as NFS without a lock daemon does)."""
    patch = tmp_path / "patch"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(
        "import errno, fcntl\n"
        "def _flock(fd, op):\n"
        "    raise OSError(errno.ENOLCK, 'No locks available')\n"
        "fcntl.flock = _flock\n")
    cmd = _command(tmp_path / "cache", tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": f"{patch}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    failed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert failed.returncode != 0
    _one_error_line(failed.stderr, "file locks do not work", "cache_dir")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_same_tables(_tables(tmp_path / "run"), undisturbed)


def _terminate_when(cmd: list[str], ready, timeout: float = 300) -> subprocess.CompletedProcess:
    """Start `cmd`, send it SIGTERM once `ready()` holds, and return what it printed."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _seen_for(seconds: float, condition):
    """A readiness check that holds once `condition` has held for `seconds`."""
    since: list[float] = []

    def ready() -> bool:
        if not since and condition():
            since.append(time.time())
        return bool(since) and time.time() - since[0] >= seconds
    return ready


def test_sigterm_in_the_search_then_resume(tmp_path, undisturbed):
    log = tmp_path / "run" / "tests.jsonl"
    cmd = _command(tmp_path / "cache", tmp_path / "run")
    stopped = _terminate_when(cmd, lambda: log.exists() and log.read_text().count("\n") >= 4)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    _one_error_line(stopped.stderr, "interrupted by SIGTERM", "rerun the same command to resume")
    assert not list((tmp_path / "run").glob(".*.tmp"))
    before = log.read_text().splitlines()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert log.read_text().splitlines()[: len(before)] == before  # finished models kept
    _assert_same_tables(_tables(tmp_path / "run"), undisturbed)


def test_sigterm_in_pretraining_then_resume(tmp_path, tmp_path_factory):
    """Stopped after its first saved state: the rerun continues from that epoch (not from 0)
    and ends with the tables of a run that was never stopped."""
    extra = ("backbone.epochs=25", "pretrain_save_every=5")
    cmd = _command(tmp_path / "cache", tmp_path / "run", extra)
    pre = tmp_path / "cache" / "pretrain"
    stopped = _terminate_when(cmd, _seen_for(0.5, lambda: any(pre.glob("*.partial/last.ckpt"))))
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    _one_error_line(stopped.stderr, "interrupted by SIGTERM", "rerun the same command to resume")
    left = [p.name for p in pre.iterdir() if not p.name.endswith(".lock")]
    assert len(left) == 1 and left[0].endswith(".partial")  # no half backbone, no temp dir
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"pretraining resumes after epoch (5|10|15|20) of 25",
                     done.stdout + done.stderr)
    assert not any(pre.glob("*.partial"))  # progress removed once the backbone is cached
    clean = tmp_path_factory.mktemp("clean")
    ref = subprocess.run(_command(clean / "cache", clean / "run", extra), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    _assert_same_tables(_tables(tmp_path / "run"), _tables(clean / "run"))
