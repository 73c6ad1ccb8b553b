"""How the supports of the default digits run hold up on fresh models, and how far refinement
shrinks them (search.verify, search.refine_budget: docs/searches.md).

For each task (remove, mislabel) and seed, one run of the default configuration with
`search.verify=V search.refine_budget=T` in a fresh run directory (the cache shared): the
search is the default run's, model for model, and the checks come after it. Per case and
pooled over seeds: supports found, the share that hold (flip rate > 1/2 on V fresh models), the
median prefix and refined sizes over the supports that hold, their ratio, and the models: the
search's (the default run's) and the checks', and the ratio of all to the default run's.

    .venv/bin/python bench/checks.py [--seeds 0 1 2] [--verify 5] [--refine-budget 8]
    .venv/bin/python bench/checks.py --smoke      # seconds-sized, for tests

Figures go to bench/results/checks.json (bench/record.py) with machine, date and commit; the
first seed's runs' cdf.png (the prefix, verified and refined CDFs) to
docs/figures/checks_cdf_<task>.png.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402

SMOKE = ["backbone.epochs=1", "reference.n_models=1", "arch.recipe.epochs=2", "targets.n=2",
         "search.budget=2", "search.n_test=2", "search.max_support=16"]


def _cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from brittle.cli.resolvers import register_resolvers
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def one_case(task: str, seed: int, args: argparse.Namespace, work: Path
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """support.parquet of one checked run, with its task and seed, and its refinement's candidate
    tests (one row each: the fraction of its models still correct, its verification's or NaN)."""
    from brittle.pipeline import run
    overrides = [f"task={task}", f"seed={seed}", f"cache_dir={work / 'cache'}",
                 f"search.verify={args.verify}", f"search.refine_budget={args.refine_budget}",
                 "progress=false", *(SMOKE if args.smoke else [])]
    out = work / f"{task}-{seed}"
    run(_cfg(overrides), out)
    if seed == args.seeds[0] and not args.smoke:   # the run's own figure, for docs/searches.md
        shutil.copy(out / "cdf.png", ROOT / "docs" / "figures" / f"checks_cdf_{task}.png")
    support = pd.read_parquet(out / "support.parquet")
    checks = pd.read_parquet(out / "checks.parquet")
    tried = (checks[checks["phase"] == "refine"].groupby(["target", "k"])["correct"].mean()
             .rename("correct").reset_index())
    fresh = (checks[checks["phase"] == "refine_verify"].groupby(["target", "k"])["correct"]
             .mean().rename("fresh").reset_index())
    return support.assign(task=task, seed=seed), tried.merge(fresh, how="left")


def candidates(tried: pd.DataFrame) -> dict[str, int]:
    """What the refinements tried: candidate tests, those whose every model still classified the
    target correctly, those that flipped, and those accepted (flipped, then held on fresh
    models)."""
    return {"candidates": len(tried), "candidates_all_correct": int((tried["correct"] == 1).sum()),
            "candidates_flipped": int((tried["correct"] <= 0.5).sum()),
            "candidates_accepted": int((tried["fresh"] < 0.5).sum())}


def figures(rows: pd.DataFrame) -> dict[str, float]:
    """The pooled figures of a set of targets' rows (support.parquet with checks)."""
    found, held = rows[rows["support"] >= 0], rows[rows["holds"].fillna(False).astype(bool)]
    prefix = float(np.median(held["support"])) if len(held) else float("nan")
    refined = float(np.median(held["refined_support"])) if len(held) else float("nan")
    search, checks = int(rows["n_models"].sum()), int(rows["check_models"].sum())
    return {"targets": len(rows), "found": len(found), "hold": len(held),
            "share_hold": len(held) / len(found) if len(found) else float("nan"),
            "median_prefix_of_held": prefix, "median_refined_of_held": refined,
            "refined_over_prefix": refined / prefix if prefix else float("nan"),
            "search_models": search, "check_models": checks,
            "models_over_default": (search + checks) / search if search else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--verify", type=int, default=5)
    parser.add_argument("--refine-budget", type=int, default=8)
    add_arguments(parser)
    args = parser.parse_args()
    record = Record("checks", args)
    record.add(verify=args.verify, refine_budget=args.refine_budget, seeds=args.seeds)
    seeds = args.seeds[:1] if args.smoke else args.seeds
    with tempfile.TemporaryDirectory(prefix="brittle-bench-checks-") as tmp:
        all_rows, all_tried = [], []
        for task in ("remove", "mislabel"):
            cases = [one_case(task, s, args, Path(tmp)) for s in seeds]
            rows, tried = pd.concat([c[0] for c in cases]), pd.concat([c[1] for c in cases])
            all_rows.append(rows)
            all_tried.append(tried)
            found = {**figures(rows), **candidates(tried)}
            record.add(**{f"{task}_{k}": v for k, v in found.items()})
            print(f"{task:<9} " + "  ".join(f"{k} {v:.3g}" if isinstance(v, float) else
                                            f"{k} {v}" for k, v in found.items()), flush=True)
        pooled = {**figures(pd.concat(all_rows)), **candidates(pd.concat(all_tried))}
        record.add(**{f"pooled_{k}": v for k, v in pooled.items()})
    print(f"refined_over_prefix={pooled['refined_over_prefix']:.3f} "
          f"models_over_default={pooled['models_over_default']:.2f} "
          f"share_hold={pooled['share_hold']:.2f}")
    record.done()


if __name__ == "__main__":
    main()
