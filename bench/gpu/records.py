"""What a finished run directory says of itself, read from the run's own records (nothing timed
from outside): each stage's seconds, the device it ran on, its AUC and models, its supports.

- cached stages (dataset decoding, reference models, pretraining, embedding): app.log names each
  as `computing STAGE -> DIR` (its meta.json holds `seconds`; decoding records none, so its time
  is the log's, to the data stage's line) or `cache hit: STAGE DIR` (0 s here: an earlier run
  paid it);
- scoring: score_cost.json `seconds`;
- the search: tests.parquet, one row a model with its share of its training call's `seconds`;
- the device: app.log's first line, `device cuda:0, torch ...`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

_COMPUTED = re.compile(r"computing (\w+) -> (\S+)")
_HIT = re.compile(r"cache hit(?: \(after wait\))?: (\w+) (\S+)")
_DEVICE = re.compile(r" - device (\S+), torch")
_DATA = "][brittle.stages.data]["   # the data stage's line: the dataset is loaded
# the cache's stage names as a reader expects them
_NAMES = {"dataset": "decode"}


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Seconds of each stage of one run, in the order it ran: decode, reference, pretrain,
    embed (0.0: a cache hit), score and search (the search's models' training time)."""
    run_dir = Path(run_dir)
    out: dict[str, float] = {}
    lines = _log_lines(run_dir)
    for i, line in enumerate(lines):
        computed, hit = _COMPUTED.search(line), _HIT.search(line)
        if computed:
            meta = json.loads((Path(computed.group(2)) / "meta.json").read_text())
            seconds = meta.get("seconds")
            if seconds is None:   # decoding records no time: the log's clock, to the data line
                done = next((later for later in lines[i + 1:] if _DATA in later), line)
                seconds = _stamp(done) - _stamp(line)
            out[_NAMES.get(computed.group(1), computed.group(1))] = float(seconds)
        elif hit:
            out.setdefault(_NAMES.get(hit.group(1), hit.group(1)), 0.0)
    cost = run_dir / "score_cost.json"
    if cost.exists():
        out["score"] = float(json.loads(cost.read_text())["seconds"])
    tests = run_dir / "tests.parquet"
    if tests.exists():
        import pandas as pd
        out["search"] = float(pd.read_parquet(tests)["seconds"].sum())
    return out


def device_used(run_dir: Path) -> str | None:
    """The device the run resolved (`cuda:0`, `cpu`), from its log."""
    for line in _log_lines(Path(run_dir)):
        found = _DEVICE.search(line)
        if found:
            return found.group(1)
    return None


def run_figures(run_dir: Path) -> dict[str, Any]:
    """A run's stage seconds, device, AUC with its interval, targets and models, from its files."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return {"stage_seconds": stage_seconds(run_dir), "device": device_used(run_dir),
            "auc": summary["auc"], "auc_ci": summary["auc_ci"], "n_targets": summary["n_targets"],
            "n_flipped": summary["n_flipped"], "search_models": summary["search_models"],
            "method": summary["names"]["method"]}


def supports(run_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(targets, supports, K) of a run: support -1 or > K is a target not flipped within K."""
    import pandas as pd
    table = pd.read_parquet(Path(run_dir) / "support.parquet")
    k = int(json.loads((Path(run_dir) / "summary.json").read_text())["max_support"])
    return table["target"].to_numpy(), table["support"].to_numpy(), k


def auc_terms(support: np.ndarray, k: int) -> np.ndarray:
    """Each target's share of the AUC, (K - support) / K, 0 when not flipped within K: the AUC is
    their mean (brittle/counterfactual/metrics.py)."""
    s = np.asarray(support, dtype=np.float64)
    return np.where((s >= 0) & (s <= k), (k - s) / k, 0.0)


def short(stages: dict[str, float]) -> str:
    """Stage seconds on one line: 'decode 11.0 s, pretrain 70.2 s, ...'."""
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())


def _stamp(line: str) -> float:
    """The time of a log line, `[2026-12-05 07:31:22,009][logger][INFO] - ...`, in seconds."""
    from datetime import datetime
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _log_lines(run_dir: Path) -> list[str]:
    log = run_dir / "app.log"
    return log.read_text().splitlines() if log.exists() else []
