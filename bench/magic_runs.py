"""The default digits run with scorer=magic, once per task: `python run.py scorer=magic
task=remove` and `task=mislabel` (10 targets, bisection, MAGIC's 3 seeds), each in a fresh run
directory (brittle's cache shared, so the reference models may come from it).

Per task: AUC with its 95% interval, targets flipped within K, the median support, the search's
models, and MAGIC's cost as score_cost.json records it: its models (trainings), their training
seconds, the seconds of scoring (forward runs, replays and backward passes) and per target, peak
memory and bytes kept; and the run's wall time. The load average at the start says how shared
the machine was.

    .venv/bin/python bench/magic_runs.py
    .venv/bin/python bench/magic_runs.py --smoke --cache /tmp/c   # seconds-sized, for tests

Figures go to bench/results/magic_runs.json (bench/record.py) with machine, date, commit.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments, add_cache_argument  # noqa: E402

SMOKE = ["targets.n=2", "search.budget=2", "search.n_test=2", "search.max_support=16",
         "reference.n_models=1", "arch.recipe.epochs=4", "scorer.n_models=2"]
COST = ("n_models", "models_seconds", "seconds", "seconds_per_target", "peak_bytes",
        "bytes_stored")


def one_task(task: str, args: argparse.Namespace) -> dict[str, object]:
    """The figures of one run of scorer=magic on `task`."""
    from hydra import compose, initialize_config_dir

    from brittle.cli.resolvers import register_resolvers
    from brittle.pipeline import run
    register_resolvers()
    overrides = ["scorer=magic", f"task={task}", "progress=false", f"cache_dir={args.cache}",
                 *(SMOKE if args.smoke else [])]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = run(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - start
    cost = summary.score_cost or {}
    return {"command": "python run.py " + " ".join(o for o in overrides
                                                   if not o.startswith("cache_dir")),
            "auc": summary.auc, "auc_ci": list(summary.auc_ci),
            "flipped": f"{summary.n_flipped}/{summary.n_targets}",
            "median_support": str(summary.median_support), "search_models": summary.search_models,
            **{f"magic_{k}": cost.get(k) for k in COST}, "wall_seconds": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cache_argument(parser)
    add_arguments(parser)   # --smoke: toy sizes; --out
    args = parser.parse_args(argv)
    record = Record("magic_runs", args)
    record.add(load_average=os.getloadavg())
    for task in ("remove", "mislabel"):
        figures = one_task(task, args)
        print(task, figures, flush=True)
        record.add(**{task: figures})
    record.done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
