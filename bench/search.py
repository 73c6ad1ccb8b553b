"""Benchmark: the search stage in lockstep (every target's next tests trained together) against
target after target, side by side in one run, on the default run's inputs (digits, 10 targets).

For each case the pipeline runs once to warm the cache and write the ranking and targets; then
the search stage alone runs in fresh run directories, the two orders alternating `--rounds`
times, and the fastest of each is kept. Cases: the default run (MLP; remove and mislabel) and a
CNN arch (`arch=cnn trainer=cpu`, 4 targets, budget 4: a CNN is not
stacked, so its tests train as before). Prints seconds and models per case and, as its last line,
`search_speedup=X supports_identical=true|false` (X: the default run's remove task; identical:
every case's supports and logged tests, compared model by model).

    .venv/bin/python bench/search.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.pipeline import run as run_pipeline  # noqa: E402
from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON  # noqa: E402
from brittle.retrain.engine import Engine  # noqa: E402
from brittle.runtime.execution import execution_of  # noqa: E402
from brittle.stages import data, search  # noqa: E402
from brittle.stages.subset import select  # noqa: E402
from brittle.stages.targets import Targets  # noqa: E402

CASES = {"mlp remove": [], "mlp mislabel": ["task=mislabel"],
         "cnn remove": ["arch=cnn", "trainer=cpu", "targets.n=4", "search.budget=4"]}


def cfg_for(overrides: list[str], cache: Path):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, f"cache_dir={cache}", "progress=false"])


def search_once(cfg, prepared: Path, lockstep: bool, work: Path) -> tuple[float, pd.DataFrame, pd.DataFrame, int]:
    """The search stage alone on the prepared run's ranking and targets, in a fresh directory:
    (seconds, support, tests without timings, models trained)."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    ex = execution_of(cfg, run_dir)
    dataset = data.run(select(cfg, data.DEPENDS_ON), ex)
    engine = Engine.from_subset(select(cfg, ENGINE_DEPENDS_ON), dataset, ex.device)
    chosen = Targets(np.load(prepared / "targets.npy"), np.load(prepared / "flips.npy"))
    strategy = instantiate(cfg.search, lockstep=lockstep)
    start = time.perf_counter()
    out = search.run(select(cfg, search.DEPENDS_ON), ex, engine, instantiate(cfg.task), strategy, chosen,
                     np.load(prepared / "topk.npy"))
    seconds = time.perf_counter() - start
    tests = pd.read_parquet(run_dir / "tests.parquet").drop(columns="seconds")
    shutil.rmtree(run_dir)
    return seconds, out.support, tests, out.trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings per order (fastest kept)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    identical, speedups = True, {}
    try:
        for name, overrides in CASES.items():
            cfg = cfg_for(overrides, work / "cache")
            prepared = work / name.replace(" ", "_")
            run_pipeline(cfg, prepared)  # warms the cache, writes topk/targets/flips
            best = {True: float("inf"), False: float("inf")}
            found = {}
            for _ in range(args.rounds):
                for lockstep in (True, False):
                    seconds, support, tests, trained = search_once(cfg, prepared, lockstep, work)
                    best[lockstep] = min(best[lockstep], seconds)
                    found[lockstep] = (support, tests)
            same = found[True][0].equals(found[False][0]) and found[True][1].equals(found[False][1])
            identical &= same
            speedups[name] = best[False] / best[True]
            print(f"{name:<13} {trained:>4} models  lockstep {best[True]:7.2f} s  target after target "
                  f"{best[False]:7.2f} s  speedup {speedups[name]:5.2f}x  identical {str(same).lower()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(" ".join(f"{k.replace(' ', '_')}={v:.2f}" for k, v in speedups.items()))
    print(f"search_speedup={speedups['mlp remove']:.2f} supports_identical={str(identical).lower()}")


if __name__ == "__main__":
    main()
