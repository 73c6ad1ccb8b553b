"""Config helpers: OmegaConf resolvers, device choice, and the config subsets each stage hashes."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from brittle.errors import BrittleError

# Keys that change where or how a stage runs but not what it computes.
_NON_SEMANTIC_DATASET_KEYS = {"download", "cache_dir"}


def run_name(override_dirname: str) -> str:
    """A directory name for a run from its command-line overrides ('default' when none)."""
    if not override_dirname:
        return "default"
    name = re.sub(r"[^A-Za-z0-9=,._+-]", "_", override_dirname)
    if len(name) > 200:  # file names stop at 255 bytes: keep a readable head and a unique tail
        name = name[:180] + "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("brittle_run_name", run_name, replace=True)


def dataset_spec(cfg: DictConfig, include_test: bool = True) -> dict:
    """The dataset loader's arguments that decide its content (train split only if asked)."""
    loader = OmegaConf.to_container(cfg.dataset.loader, resolve=True)
    drop = _NON_SEMANTIC_DATASET_KEYS | (set() if include_test else {"test_subset"})
    spec = {k: v for k, v in loader.items() if k not in drop}
    if spec.get("root"):  # the same data named by another relative path is the same data
        spec["root"] = str(Path(spec["root"]).expanduser().resolve())
    return spec


def resolve_device(cfg: DictConfig) -> torch.device:
    """`device: auto` picks CUDA when present; an explicit cuda request without a GPU is an error."""
    want = str(cfg.get("device", "auto"))
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise BrittleError(f"device={want} but no CUDA GPU is visible; use device=cpu or device=auto")
    if want != "cpu" and not want.startswith("cuda"):
        raise BrittleError(f"device={want} is not valid; use auto, cpu, cuda or cuda:N")
    return torch.device(want)
