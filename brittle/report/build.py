"""The report of a set of runs: tables, figures and the commands that made them.

    python -m brittle.report [PATHS ...] [--out figures] [--baseline "Random (0)"]

Writes figures/runs.parquet, summary.csv, every figure (PNG and PDF), `auc.md`, and `report.md`
embedding them. Reads only what the runs stored.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import seaborn as sns
import yaml

from brittle.report.aggregate import DEFAULT_PATHS, aggregate
from brittle.report.figures import (
    auc_table,
    cdf_figure,
    comparison_figure,
    cost_figure,
    dedupe,
    lds_figure,
    topk_figure,
)
from brittle.report.tables import comparisons, lds_markdown
from brittle.runtime.files import atomic_path


def _commands(summary: pd.DataFrame) -> list[str]:
    out = []
    for run in summary["run"]:
        overrides = Path(run) / ".hydra" / "overrides.yaml"
        args = yaml.safe_load(overrides.read_text()) if overrides.exists() else []
        out.append("python run.py " + " ".join(args or []))
    return sorted(set(out))


def write_report(paths: list[Path], out: Path, baseline: str | None) -> Path:
    summary, tidy = aggregate(paths)
    if summary.empty:
        raise SystemExit(f"error: no finished runs under {[str(p) for p in paths]}")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "runs.parquet") as tmp:
        tidy.to_parquet(tmp, index=False)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    summary, tidy = dedupe(summary, tidy)
    sns.set_theme(style="whitegrid", context="paper")
    compared = comparisons(tidy, baseline)
    figs = {"Support CDF (paper Fig 3)": cdf_figure(tidy, out),
            "Per-target comparison (paper Fig 4)": comparison_figure(compared, out),
            "Cost (paper Fig 1)": cost_figure(summary, out),
            "Top training images (paper Fig 7)": topk_figure(summary, out),
            "LDS (paper Table 1)": lds_figure(summary, out)}
    auc_md, heat = auc_table(summary, out)
    figs["AUC heatmap (paper Table 2)"] = heat
    cols = ["method", "task", "arch", "dataset", "auc", "auc_lo", "auc_hi", "n_flipped",
            "n_targets", "median_support", "lds", "lds_lo", "lds_hi", "lds_sign_alone",
            "search_models", "score_seconds", "bytes_stored"]
    lines = ["# brittle report", "",
             f"{len(summary)} runs from {', '.join(str(p) for p in paths)}.", "",
             "## AUC (Table 2 layout)", "", auc_md,
             *(["## LDS and sign estimation alone", "", lds_markdown(summary)]
               if summary["lds"].notna().any() else []),
             "## Per-target comparison against a baseline (two-sided sign test over targets)", "",
             (compared.round(4).to_markdown(index=False) if not compared.empty
              else "(one method only)"), "",
             "## Runs", "", summary[cols].round(4).to_markdown(index=False), ""]
    for title, name in figs.items():
        if name:
            lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += ["## Commands", "", "```bash", *_commands(summary), "```", ""]
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Figures and report from brittle runs.")
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("figures"))
    parser.add_argument("--baseline", default=None, help="method label to compare against "
                        "(default: the random baseline)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    paths = args.paths or [Path(p) for p in DEFAULT_PATHS if Path(p).exists()]
    report = write_report(paths, args.out, args.baseline)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
