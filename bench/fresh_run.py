"""A fresh clone's `make run`, as the README promises it: the seconds from an empty directory to
the default job's table (clone, venv, torch pinned, brittle with its core dependencies, the
default job), and that the environment holds no extra's package (traker, dattri, ray, pytest).
Then `pip install .` of that clone into another venv, and `brittle` in an empty directory: the
default job runs with no extra. -> bench/results/fresh_run.json

Not part of `make bench` (it installs torch twice and runs the default job twice). The pip
cache and the machine's wheel mirror are as they are; the job runs with one torch thread.

    python bench/fresh_run.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.record import ROOT, Record, add_arguments  # noqa: E402

# the packages of extras that a core install must not bring
EXTRAS_ONLY = ("traker", "dattri", "ray", "pytest", "tensorboard", "mlflow-skinny", "wandb",
               "datasets", "hydra-ray-launcher")
TORCH = ("torch==2.14.1", "torchvision==0.29.1")   # the Makefile's pin


def _run(argv: list[str], cwd: Path, log: Path, env: dict[str, str]) -> tuple[int, float]:
    """(exit status, seconds) of a command, its output appended to `log`."""
    start = time.perf_counter()
    with open(log, "a") as out:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return done.returncode, time.perf_counter() - start


def _packages(python: Path) -> dict[str, str]:
    """name -> version of a venv's installed distributions."""
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout
    return dict(line.split("==", 1) for line in listed.splitlines() if "==" in line)


def _last_lines(log: Path, n: int = 4) -> list[str]:
    return log.read_text(errors="replace").splitlines()[-n:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--keep", type=Path, default=None,
                        help="work here and keep it (default: a temporary directory)")
    args = parser.parse_args()
    record = Record("fresh_run", args)
    work = args.keep or Path(tempfile.mkdtemp(prefix="brittle-fresh-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("VIRTUAL_ENV", None)
    clone, log = work / "clone", work / "make_run.log"

    start = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # what is measured is the clone, the commit itself, whatever the checkout's work tree holds
    record.data["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone,
                                           capture_output=True, text=True).stdout.strip()
    record.data["dirty"] = False
    status, _ = _run(["make", "run"], clone, log, env)
    seconds = time.perf_counter() - start
    found = _packages(clone / ".venv" / "bin" / "python")
    print("\n".join(_last_lines(log)), flush=True)
    record.add(make_run_seconds=round(seconds, 1), make_run_status=status, torch=found.get("torch"),
               extras_present=sorted(p for p in EXTRAS_ONLY if p in found),
               packages=len(found), job_torch_threads=int(env["OMP_NUM_THREADS"]))
    print(f"make run: status {status}, {seconds:.0f} s; extras' packages present: "
          f"{record.data['figures']['extras_present'] or 'none'}", flush=True)

    venv, elsewhere, plog = work / "pkg", work / "elsewhere", work / "pip_install.log"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    status, _ = _run([*pip, *TORCH], work, plog, env)
    status = status or _run([*pip, str(clone)], work, plog, env)[0]
    elsewhere.mkdir(exist_ok=True)
    job, job_seconds = _run([str(venv / "bin" / "brittle")], elsewhere, work / "brittle.log", env)
    installed = _packages(venv / "bin" / "python")
    print("\n".join(_last_lines(work / "brittle.log")), flush=True)
    record.add(pip_install_status=status, brittle_status=job, brittle_seconds=round(job_seconds, 1),
               pip_install_extras_present=sorted(p for p in EXTRAS_ONLY if p in installed))
    print(f"pip install . then brittle: install status {status}, job status {job}", flush=True)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    record.done()


if __name__ == "__main__":
    main()
