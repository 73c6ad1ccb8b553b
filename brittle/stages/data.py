"""Data stage: the configured dataset as uint8 images, loaded (and for CIFAR-10 decoded once into
the cache) from `dataset.loader`. Its slice is every other stage's view of the data."""
from __future__ import annotations

import inspect
import logging

from hydra.utils import get_method
from omegaconf import DictConfig

from brittle.data.datasets import Dataset
from brittle.runtime.execution import Execution, plain
from brittle.runtime.stagetimes import timed_stage

log = logging.getLogger(__name__)

DEPENDS_ON = ("dataset.loader",)
# the train split alone: what pretraining sees
TRAIN_ONLY = ("dataset.loader.test_subset",)


@timed_stage("data")
def run(cfg: DictConfig, ex: Execution) -> Dataset:
    """Load the dataset of `cfg.dataset.loader` (execution settings come from `ex`)."""
    args = plain(cfg.dataset.loader)
    loader = get_method(args.pop("_target_"))
    accepted = inspect.signature(loader).parameters
    if "cache_dir" in accepted:
        args["cache_dir"] = str(ex.cache.root)
    if "download" in accepted:
        args["download"] = ex.download
    data = loader(**args)
    log.info("dataset %s: %d train, %d test images of shape %s, %d classes (%s order)", data.name,
             len(data.train), len(data.test), tuple(data.train.images.shape[1:]), data.num_classes,
             data.ordering)
    return data
