"""What a run sends a tracker (brittle/runtime/tracking.py): its composed config as flat
settings, without any credential-like one, and its summary's numbers by name."""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

# setting names whose values are never logged (and never accepted under `logger`)
CREDENTIAL = re.compile(r"api_?key|token|secret|passw(or)?d|credential", re.IGNORECASE)
# summary.json entries that are not numbers of the run (config, names, the CDF's points)
NOT_METRICS = ("cdf", "search", "choices", "names")


def flat_params(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The composed config as flat dotted keys (`dataset.name`), without Hydra's node, the tracker's
    own settings and any credential-like setting; lists become their text."""
    tree = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, Any] = {}

    def walk(node: Mapping[Any, Any], prefix: str) -> None:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if CREDENTIAL.search(str(key)) or path in ("hydra", "logger"):
                continue
            if isinstance(value, Mapping):
                walk(value, path + ".")
            else:
                out[path] = value if value is None or isinstance(value, (bool, int, float, str)) \
                    else str(value)

    walk(tree if isinstance(tree, Mapping) else {}, "")
    return out


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a summary.json record by its names (`auc`, `median_support`, `lds`), a
    nested record's as `score_cost/seconds`, an interval's ends as `auc_ci/low` and `/high`. Text
    (a median of ">K": fewer than half flipped) and the search's config are left out."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key in NOT_METRICS:
            continue
        if isinstance(value, Mapping):
            out.update({f"{key}/{k}": float(v) for k, v in value.items() if is_number(v)})
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(map(is_number, value)):
            out[f"{key}/low"], out[f"{key}/high"] = float(value[0]), float(value[1])
        elif is_number(value):
            out[key] = float(value)
    return out


def is_number(value: Any) -> bool:
    """A finite real number (numpy's included), not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))
