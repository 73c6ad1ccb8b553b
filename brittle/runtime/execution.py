"""Where and how a run executes, kept apart from what it computes.

`EXECUTION_KEYS` is the one list of settings that only change where a run executes (device,
cache location, logging, downloads) or where its results are also sent (the experiment tracker,
`logger`): they never enter a cache key or a run's identity, and Hydra leaves them out of
run-directory names. Stages receive them as an `Execution`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from brittle.runtime.cache import StageCache
from brittle.runtime.errors import BrittleError
from brittle.runtime.names import with_stable_names
from brittle.runtime.stagetimes import StageTimes
from brittle.runtime.tracking import Tracker

# torch is imported where a device is resolved: the command line's checks need none
if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Dotted config paths; a run directory made with one value is resumed with any other.
# (backbone.trust_checkpoint permits reading a file, it does not change what is computed.)
EXECUTION_KEYS = ("debug", "progress", "device", "cache_dir", "dataset.download",
                  "backbone.trust_checkpoint", "pretrain_save_every", "search.lockstep",
                  "logger")
# Display names of options (tables, figures): never part of what a stage computes. Exact paths:
# a setting called `name` anywhere else (dataset.name: which dataset) is a setting like any other.
DISPLAY_KEYS = ("arch.name", "trainer.name", "backbone.name")


def command_line_keys() -> list[str]:
    """The execution keys as Hydra's override_dirname excludes them from run-directory names."""
    return list(EXECUTION_KEYS)


@dataclass(frozen=True)
class Execution:
    """device: where tensors live; progress: bars/log lines for long work; cache: the stage
    cache; run_dir: this run's directory; download: loaders may fetch missing data;
    trust_checkpoint: `backbone.checkpoint` may be read with full unpickling; save_every:
    pretraining saves its state every N epochs for a killed run to resume from (0: never);
    tracker: the run's experiment tracker (brittle/runtime/tracking.py; the pipeline's own, else
    none)."""
    device: torch.device
    progress: bool
    cache: StageCache
    run_dir: Path
    download: bool = False
    trust_checkpoint: bool = False  # a user's checkpoint may be unpickled in full (it can run code)
    save_every: int = 0
    tracker: Tracker = field(default_factory=lambda: Tracker(None, Path(".")))
    times: StageTimes = field(default_factory=StageTimes)   # each stage's seconds and models


def resolve_device(want: str) -> torch.device:
    """`auto` picks CUDA when usable; `auto` and `cuda` become `cuda:<current device>` (never an
    index-less CUDA device); an explicit cuda request without a GPU, or a cuda:N beyond the visible
    GPUs, is an error. NVIDIA GPUs that this torch cannot use (a driver older than its
    CUDA build needs) are a warning, not a silent CPU run."""
    import torch

    want = str(want)
    if want != "auto" and want != "cpu" and not want.startswith("cuda"):
        raise BrittleError(f"device={want} is not valid; use auto, cpu, cuda or cuda:N")
    usable = torch.cuda.is_available()
    if not usable and want != "cpu" and nvidia_gpus_present():
        log.warning("NVIDIA GPUs are present but this torch (CUDA %s) cannot use them "
                    "(is the driver older than its CUDA build needs?); device=%s runs on the CPU",
                    torch.version.cuda, want)
    if want == "auto" and not usable or want == "cpu":
        return torch.device("cpu")
    if not usable:
        raise BrittleError(f"device={want} but no CUDA GPU is visible; use device=cpu "
                           "or device=auto")
    try:
        device = torch.device("cuda" if want == "auto" else want)
    except RuntimeError:
        raise BrittleError(f"device={want} is not valid; use auto, cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        raise BrittleError(f"device={want} is not valid; use auto, cpu, cuda or cuda:N")
    if device.index is None:
        # torch's set_device, Lightning's `devices` and cost records need an index: `auto` and
        # `cuda` mean the current CUDA device, named once here so nothing downstream sees `cuda`
        return torch.device("cuda", torch.cuda.current_device())
    n = torch.cuda.device_count()
    if device.index >= n:
        raise BrittleError(f"device={want} but {n} GPU{'s' if n != 1 else ''} are visible; use "
                           f"cuda:0 .. cuda:{n - 1}")
    return device


def nvidia_gpus_present() -> bool:
    """Whether the NVIDIA kernel driver reports GPUs on this machine (whatever torch can use)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def activate(device: torch.device) -> None:
    """Make a CUDA device the current one, so work that names no index (libraries, Lightning's
    helpers) lands on it too, and log what the run executes on."""
    import torch

    if device.type == "cuda":
        torch.cuda.set_device(device)
        # every retrained model of a run has the same shapes: cuDNN's autotuning is paid once
        torch.backends.cudnn.benchmark = True
        log.info("device %s (%s), torch %s, CUDA %s", device, torch.cuda.get_device_name(device),
                 torch.__version__, torch.version.cuda)
    else:
        log.info("device cpu, torch %s (CUDA build %s)", torch.__version__, torch.version.cuda)


def execution_of(cfg: DictConfig, run_dir: Path) -> Execution:
    """The execution settings of a composed config (a bad device fails here, before any work)."""
    return Execution(device=resolve_device(cfg.get("device", "auto")),
                     progress=bool(cfg.get("progress", False)),
                     cache=StageCache(Path(cfg.cache_dir)), run_dir=Path(run_dir),
                     download=bool(cfg.get("dataset", {}).get("download", False)),
                     trust_checkpoint=bool(cfg.get("backbone", {}).get("trust_checkpoint", False)),
                     save_every=int(cfg.get("pretrain_save_every", 0)))


def plain(node: Any) -> dict[str, Any]:
    """A config node as a resolved plain dict (OmegaConf's containers are typed as any JSON
    value)."""
    out = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(out, dict):
        raise TypeError(f"expected a mapping config node, got {type(out).__name__}")
    return {str(k): v for k, v in out.items()}


def without_execution(container: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A resolved config container (or a subtree at `prefix`) minus every execution key."""
    out = {}
    for key, value in container.items():
        path = f"{prefix}{key}"
        if path in EXECUTION_KEYS:
            continue
        out[key] = without_execution(value, path + ".") if isinstance(value, dict) else value
    return out


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """What a run computes: its whole resolved config minus the execution keys, code by its
    stable names (run_spec.json)."""
    full = plain(cfg)
    full.pop("hydra", None)
    return with_stable_names(without_execution(full))
