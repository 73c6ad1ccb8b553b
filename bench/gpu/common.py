"""What every part of the GPU check shares: its context (size, data, work and cache folders),
brittle's composed config, the device's description, and running a command line as a user types it
(`python run.py ...`) with its output kept in a log file."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CIFAR_DEFAULT = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
WORK_ENV = "BRITTLE_GPU_CHECK_WORK"   # the parent's work folder, handed to each part's process
TINY_SETS = ["dataset.train_subset=200", "dataset.test_subset=100"]   # CIFAR-10 at --smoke size


class Skip(Exception):
    """A part that cannot run here; its message is the reason, recorded as such."""


def find_cifar() -> Path | None:
    """The CIFAR-10 class-folder tarball: $BRITTLE_CIFAR10, else the development copy."""
    path = Path(os.environ.get("BRITTLE_CIFAR10", str(CIFAR_DEFAULT)))
    return path if path.exists() else None


def cuda() -> bool:
    import torch
    return bool(torch.cuda.is_available())


@dataclass(frozen=True)
class Context:
    """One part's view of the check: `smoke` (toy sizes on any device), the CIFAR-10 tarball
    (None: absent), the work folder (run directories, logs) and the shared stage cache."""
    smoke: bool
    cifar: Path | None
    work: Path
    cache: Path
    seeds: int

    @classmethod
    def from_env(cls, smoke: bool, seeds: int) -> Context:
        work = Path(os.environ[WORK_ENV])
        cache = Path(os.environ.get("BRITTLE_CACHE", work / "cache"))
        return cls(smoke, find_cifar(), work, cache, seeds)

    def need_cifar(self) -> Path:
        if self.cifar is None:
            raise Skip("CIFAR-10 not found (set BRITTLE_CIFAR10 to the class-folder tarball)")
        return self.cifar

    def cifar_base(self) -> list[str]:
        """dataset=cifar10 at this size: the full sets, or at --smoke TINY_SETS."""
        base = ["dataset=cifar10", f"dataset.root={self.need_cifar()}"]
        return base + (TINY_SETS if self.smoke else [])


def merged(*groups: list[str]) -> list[str]:
    """Overrides in order, a later value of a key replacing an earlier one in its place."""
    out: dict[str, str] = {}
    for group in groups:
        for item in group:
            out[item.split("=", 1)[0]] = item
    return list(out.values())


def slug(name: str) -> str:
    """A device name as a file name: 'NVIDIA H200' -> 'nvidia-h200'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def device_info() -> dict[str, Any]:
    """The device the figures are of: name, its slug, torch, CUDA and cuDNN versions."""
    import torch
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    cudnn = torch.backends.cudnn.version() if torch.cuda.is_available() else None
    return {"name": name, "slug": slug(name), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": cudnn, "count": torch.cuda.device_count()}


def compose_cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from brittle.cli.resolvers import register_resolvers
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def engine_for(overrides: list[str]):
    from brittle.api import build_engine, load_data
    cfg = compose_cfg(overrides)
    return build_engine(cfg, load_data(cfg))


@dataclass(frozen=True)
class Done:
    """A command line that ran: as a user types it, and its wall time."""
    command: str
    seconds: float


def run_command(ctx: Context, name: str, argv: list[str], timeout: float | None = None) -> Done:
    """`python ARGV...` in the checkout's root, as a user runs it; its output goes to
    work/NAME.log. A failure raises with the last line the command wrote to stderr."""
    log = ctx.work / f"{name}.log"
    env = {**os.environ, "BRITTLE_CACHE": str(ctx.cache), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)
    seconds = time.perf_counter() - start
    command = " ".join(["python", *argv])
    if done.returncode != 0:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        raise RuntimeError(f"`{command}` exited with {done.returncode}: "
                           f"{lines[-1] if lines else 'no output'} (log: {log})")
    return Done(command, seconds)
