"""The paper's comparison on digits, end to end: `python run.py -m experiment=digits_compare` (20
jobs: 10 methods x 2 tasks, each method's LDS on one bank) from an empty cache, then its report.

Writes bench/results/digits_compare.json (every run's AUC with its interval, fraction flipped,
median support, LDS and sign estimation alone, models, ranking digest and per-target supports;
bench/record.py's format) and the report's figures into docs/figures/; `make docs` makes
docs/digits-compare.md from the file. `--runs DIR` reads an existing sweep instead of running one.
`--smoke`: three methods, one task, toy sizes, figures into a temporary folder.

    .venv/bin/python bench/digits_compare.py [--runs DIR] [--figures docs/figures] [--smoke]
"""
from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402

SWEEP = ["-m", "experiment=digits_compare"]
SMOKE = ["scorer=esvm,esvm_other_classes_zero,random", "task=remove", "eval.n_models=8",
         "backbone.epochs=1", "targets.n=3", "search.budget=2", "search.n_test=1",
         "search.max_support=16", "reference.n_models=1", "arch.recipe.epochs=4"]
FIGURES = ("support_cdf", "per_target_comparison", "auc_heatmap", "cost", "lds", "topk_images")
RUN_COLUMNS = ("method", "task", "arch", "dataset", "auc", "auc_lo", "auc_hi", "fraction_flipped",
               "n_flipped", "n_targets", "median_support", "max_support", "lds", "lds_lo",
               "lds_hi", "lds_sign_alone", "lds_sign_alone_lo", "lds_sign_alone_hi",
               "search_models", "scorer_models", "ranking", "score_seconds", "models_seconds",
               "bytes_stored")


def sweep(work: Path, smoke: bool) -> tuple[Path, str, float]:
    """The sweep from an empty cache in `work`: (its folder, its command line, wall seconds)."""
    argv = [*SWEEP, *(SMOKE if smoke else []), f"hydra.sweep.dir={work / 'multirun'}",
            f"cache_dir={work / 'cache'}", "progress=false"]
    start = time.perf_counter()
    with open(work / "sweep.log", "w") as log:
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), *argv], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = (work / "sweep.log").read_text().splitlines()[-1:]
        sys.exit(f"error: the sweep exited with {done.returncode}: {tail}")
    shown = [a for a in argv if not a.startswith(("hydra.sweep.dir=", "cache_dir=", "progress="))]
    return work / "multirun", " ".join(["python run.py", *shown]), time.perf_counter() - start


def _plain(value: Any) -> Any:
    """A table cell as JSON: numpy numbers as Python's, NaN as null."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def runs_of(paths: list[Path]) -> list[dict[str, Any]]:
    """One entry per run of the report (brittle/report: aggregate, then dedupe): the columns the
    tables need, the scorer option the run chose and the supports by target."""
    from brittle.report.aggregate import aggregate
    from brittle.report.figures import dedupe
    from brittle.stages.summarize import RunSummary
    summary, tidy = dedupe(*aggregate(paths))
    out = []
    for row in summary.sort_values(["task", "method"]).to_dict("records"):
        targets = tidy[tidy["run"] == row["run"]].sort_values("target")
        choices = RunSummary.read(Path(row["run"]) / "summary.json").choices
        out.append({**{c: _plain(row.get(c)) for c in RUN_COLUMNS},
                    "option": choices.get("scorer"),
                    "supports": {str(int(t)): int(s)
                                 for t, s in zip(targets["target"], targets["support"])}})
    return out


def draw(paths: list[Path], work: Path, figures: Path) -> list[str]:
    """The report's figures (python -m brittle.report) copied into `figures`; their names."""
    from brittle.report.build import write_report
    write_report(paths, work / "report", None)
    figures.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name in FIGURES:
        made = work / "report" / f"{name}.png"
        if made.exists():
            shutil.copyfile(made, figures / made.name)
            drawn.append(made.name)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--runs", type=Path, default=None, help="an existing sweep's folder")
    parser.add_argument("--figures", type=Path, default=None,
                        help="where the figures go (default docs/figures; --smoke: temporary)")
    args = parser.parse_args(argv)
    record = Record("digits_compare", args)
    with tempfile.TemporaryDirectory(prefix="brittle-digits-compare-") as tmp:
        work = Path(tmp)
        if args.runs is None:
            runs, command, seconds = sweep(work, args.smoke)
            record.data.update(sweep_command=command, sweep_seconds=seconds)
        else:
            runs = args.runs
            record.data["sweep_command"] = " ".join(["python run.py", *SWEEP])
        figures = args.figures or (work / "figures" if args.smoke else ROOT / "docs" / "figures")
        drawn = draw([runs], work, figures)
        entries = runs_of([runs])
    record.data.update(page="digits-compare.md", figures_drawn=drawn)
    record.add(runs=entries, models=sum(int(r["search_models"]) for r in entries))
    print(f"{len(entries)} runs, {sum(int(r['search_models']) for r in entries)} search models; "
          f"figures: {', '.join(drawn)}", flush=True)
    record.done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
