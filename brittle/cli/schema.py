"""The typed top level of conf/config.yaml, registered in Hydra's ConfigStore as `brittle_schema`
(the first default of config.yaml): a top-level setting of the wrong type, or one that does not
exist, fails at composition. It holds types only; every value comes from config.yaml (`MISSING`
here), so a default lives in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TargetsSchema:
    n: int = MISSING
    only_correct: bool = MISSING
    seed: int = MISSING
    indices: Any = MISSING   # a list of test indices, the path of a file of them, or None
    indices_ordering: str = MISSING
    shard: int = MISSING
    num_shards: int = MISSING


@dataclass
class ReferenceSchema:
    n_models: int = MISSING


@dataclass
class TrakSizesSchema:
    n_models: int = MISSING
    proj_dim: int = MISSING


@dataclass
class EsvmLdsSchema:
    negatives: str = MISSING
    magnitude: str = MISSING


@dataclass
class ScoreSchema:
    chunk: int = MISSING
    save_scores: bool = MISSING


@dataclass
class BrittleSchema:
    """The typed top level of conf/config.yaml; each group's options are checked against the
    signatures of their `_target_`s (`check_targets`)."""
    seed: int = MISSING
    cache_dir: str = MISSING
    device: str = MISSING
    progress: bool = MISSING
    debug: bool = MISSING
    pretrain_save_every: int = MISSING
    targets: TargetsSchema = field(default_factory=TargetsSchema)
    reference: ReferenceSchema = field(default_factory=ReferenceSchema)
    score: ScoreSchema = field(default_factory=ScoreSchema)
    trak_sizes: TrakSizesSchema = field(default_factory=TrakSizesSchema)
    esvm_lds: EsvmLdsSchema = field(default_factory=EsvmLdsSchema)
    dataset: dict[str, Any] = field(default_factory=dict)
    backbone: dict[str, Any] = field(default_factory=dict)
    scorer: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    arch: dict[str, Any] = field(default_factory=dict)
    source_arch: dict[str, Any] | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)   # {}: logger=none


def register_schema() -> None:
    ConfigStore.instance().store(name="brittle_schema", node=BrittleSchema)
