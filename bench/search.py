"""Benchmark: the search stage in lockstep (every target's next tests trained together) against
target after target, side by side in one run, on the default run's inputs (digits, 10 targets),
and what a model costs inside the search against the same training alone.

For each case the pipeline runs once to warm the cache and write the ranking and targets; then
the search stage alone runs in fresh run directories, the two orders alternating `--rounds`
times, and the fastest of each is kept. Cases: the default run (MLP; remove and mislabel) and a
CNN arch (`arch=cnn trainer=cpu`, 4 targets, budget 4: a CNN is not stacked, so its tests train
one model at a time). Prints seconds and models per case and, as its last line,
`search_speedup=X supports_identical=true|false` (X: the default run's remove task; identical:
every case's supports and logged tests, model by model: test, seed, verdict and margin, bit for
bit; the largest margin difference is shown, and is 0 on a CPU: a model's arithmetic does not
depend on its companions, brittle/retrain/recipe_trainer.py).

In search vs alone: the search (target after target) runs with its engine's training calls
recorded; the same calls (the same jobs, grouped as the search grouped them) are then trained
again with nothing around them. Seconds per model inside the search (the stage's wall time over
its models) minus alone is what the search adds per model: building the modified training sets,
evaluating the models, the durable log, the bookkeeping. The two alternate `--rounds` times,
the fastest of each kept.

Figures also go to bench/results/search.json (bench/record.py). `--smoke`: the MLP remove case
on a 1-epoch backbone, 2 targets, a 3-test bisection, one round.

    .venv/bin/python bench/search.py [--rounds 3] [--cases mlp_remove,...] [--smoke] [--out FILE]
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

from bench.record import Record, add_arguments  # noqa: E402
from brittle.cli.resolvers import register_resolvers  # noqa: E402
from brittle.pipeline import run as run_pipeline  # noqa: E402
from brittle.retrain.engine import DEPENDS_ON as ENGINE_DEPENDS_ON  # noqa: E402
from brittle.retrain.engine import Engine  # noqa: E402
from brittle.runtime.execution import execution_of  # noqa: E402
from brittle.stages import data, search  # noqa: E402
from brittle.stages.keys import select  # noqa: E402
from brittle.stages.targets import Targets  # noqa: E402

CASES = {"mlp remove": [], "mlp mislabel": ["task=mislabel"],
         "cnn remove": ["arch=cnn", "trainer=cpu", "targets.n=4", "search.budget=4"]}
SMOKE = {"mlp remove": ["backbone.epochs=1", "targets.n=2", "search.budget=2",
                        "search.max_support=16", "reference.n_models=1", "arch.recipe.epochs=4"]}


def cfg_for(overrides: list[str], cache: Path):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config",
                       overrides=[*overrides, f"cache_dir={cache}", "progress=false"])


def search_once(cfg, prepared: Path, lockstep: bool, work: Path, calls: list | None = None
                ) -> tuple[float, pd.DataFrame, pd.DataFrame, int]:
    """The search stage alone on the prepared run's ranking and targets, in a fresh directory:
    (seconds, support, tests without timings, models trained). With `calls`, each of the
    engine's training calls is appended to it: (jobs, seconds)."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    ex = execution_of(cfg, run_dir)
    dataset = data.run(select(cfg, data.DEPENDS_ON), ex)
    engine = Engine.from_slice(select(cfg, ENGINE_DEPENDS_ON), dataset, ex.device)
    if calls is not None:
        engine.train_jobs = recording(engine, calls)  # type: ignore[method-assign]
    chosen = Targets(np.load(prepared / "targets.npy"), np.load(prepared / "flips.npy"))
    strategy = instantiate(cfg.search, lockstep=lockstep)
    start = time.perf_counter()
    out = search.run(select(cfg, search.DEPENDS_ON), ex, engine, instantiate(cfg.task), strategy,
                     chosen, np.load(prepared / "topk.npy"))
    seconds = time.perf_counter() - start
    tests = pd.read_parquet(run_dir / "tests.parquet").drop(columns="seconds")
    shutil.rmtree(run_dir)
    if calls is not None:
        calls.append(engine)   # the engine the calls are replayed on
    return seconds, out.support, tests, out.trained


def _same(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame]
          ) -> tuple[bool, float]:
    """(supports equal and every logged model the same test, seed, verdict and margin; the
    largest margin difference). Logs are compared in (target, k, replicate) order: lockstep logs
    a round's tests of all targets together."""
    keys = ["target", "k", "rep", "seed", "correct", "margin"]
    ta, tb = (t.sort_values(keys[:3]).reset_index(drop=True) for t in (a[1], b[1]))
    same = a[0].equals(b[0]) and ta[keys].equals(tb[keys])
    gap = float((ta["margin"] - tb["margin"]).abs().max()) if same else float("nan")
    return same, gap


def recording(engine: Engine, calls: list):
    train_jobs = engine.train_jobs

    def record(jobs):
        start = time.perf_counter()
        models = train_jobs(jobs)
        calls.append((list(jobs), time.perf_counter() - start))
        return models
    return record


def in_search_vs_alone(cfg, prepared: Path, work: Path, rounds: int) -> dict[str, float]:
    """Seconds per model: the search stage's wall time, its training calls, and the same calls
    replayed alone (fastest of `rounds` each), with the models per search."""
    best = {"in_search": float("inf"), "training_in_search": float("inf"), "alone": float("inf")}
    for _ in range(rounds):
        calls: list = []
        seconds, _, _, trained = search_once(cfg, prepared, False, work, calls)
        engine = calls.pop()
        best["in_search"] = min(best["in_search"], seconds / trained)
        training = sum(t for _, t in calls) / trained
        best["training_in_search"] = min(best["training_in_search"], training)
        start = time.perf_counter()
        for jobs, _ in calls:   # the engine's own method: the recorder would grow `calls`
            Engine.train_jobs(engine, jobs)
        best["alone"] = min(best["alone"], (time.perf_counter() - start) / trained)
    return {**best, "added_per_model": best["in_search"] - best["alone"], "models": trained,
            "training_calls": len(calls)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating timings per order (fastest kept)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated cases to run (default: all): "
                             + ", ".join(name.replace(" ", "_") for name in CASES))
    add_arguments(parser)
    args = parser.parse_args()
    record = Record("search", args)
    cases = SMOKE if args.smoke else CASES
    if args.cases:
        cases = {k: v for k, v in cases.items() if k.replace(" ", "_") in args.cases.split(",")}
    rounds = 1 if args.smoke else args.rounds
    logging.disable(logging.INFO)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    identical, speedups = True, {}
    try:
        for name, overrides in cases.items():
            cfg = cfg_for(overrides, work / "cache")
            prepared = work / name.replace(" ", "_")
            run_pipeline(cfg, prepared)  # warms the cache, writes topk/targets/flips
            best = {True: float("inf"), False: float("inf")}
            found = {}
            for _ in range(rounds):
                for lockstep in (True, False):
                    seconds, support, tests, trained = search_once(cfg, prepared, lockstep, work)
                    best[lockstep] = min(best[lockstep], seconds)
                    found[lockstep] = (support, tests)
            same, margin_gap = _same(found[True], found[False])
            identical &= same
            speedups[name] = best[False] / best[True]
            print(f"{name:<13} {trained:>4} models  lockstep {best[True]:7.2f} s  target after "
                  f"target {best[False]:7.2f} s  speedup {speedups[name]:5.2f}x  identical "
                  f"{str(same).lower()} (largest margin difference {margin_gap:.1e})", flush=True)
            cost = in_search_vs_alone(cfg, prepared, work, rounds)
            print(f"{'':<13} per model: in the search {cost['in_search']:.4f} s, its training "
                  f"{cost['training_in_search']:.4f} s, the same training alone "
                  f"{cost['alone']:.4f} s (the search adds {cost['added_per_model']:+.4f} s; "
                  f"{cost['training_calls']} training calls)", flush=True)
            key = name.replace(" ", "_")
            record.add(**{f"{key}_models": trained, f"{key}_lockstep_seconds": best[True],
                          f"{key}_target_after_target_seconds": best[False],
                          f"{key}_speedup": speedups[name], f"{key}_identical": same,
                          f"{key}_largest_margin_difference": margin_gap},
                       **{f"{key}_per_model_{k}": v for k, v in cost.items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(" ".join(f"{k.replace(' ', '_')}={v:.2f}" for k, v in speedups.items()))
    first = next(iter(speedups))
    print(f"search_speedup={speedups[first]:.2f} supports_identical={str(identical).lower()}")
    record.add(search_speedup=speedups[first], supports_identical=identical)
    record.done()


if __name__ == "__main__":
    main()
