"""Summarize stage: summary.json, the support CDF figure, and the table printed at the end.

summary.json is the run's typed record: the headline numbers with 95% bootstrap intervals over
targets (AUC, fraction flipped; LDS when evaluated), the median support over all targets (">K"
when at least half never flipped), and the labels (method, backbone, task, arch, trainer,
dataset) the run computed itself, which aggregation reads as they are."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brittle.artifacts import atomic_path, save_json
from brittle.metrics import (bootstrap_ci, fraction_flipped, median_support, support_auc,
                             support_cdf)
from brittle.search import NOT_FOUND


@dataclass(frozen=True)
class RunLabels:
    """How tables and figures name a run (summary.json "labels"); computed by the run itself."""
    method: str
    backbone: str | None
    task: str
    arch: str | None
    trainer: str | None
    dataset: str


def headline(supports: np.ndarray, max_support: int) -> dict[str, Any]:
    """AUC, fraction flipped (each with a 95% bootstrap CI over targets) and the median."""
    s = np.asarray(supports)
    return {
        "auc": support_auc(s, max_support),
        "auc_ci": list(bootstrap_ci(s, lambda x: support_auc(x, max_support))),
        "n_targets": int(len(s)),
        "n_flipped": int(((s >= 0) & (s <= max_support)).sum()),
        "fraction_flipped": fraction_flipped(s, max_support),
        "fraction_flipped_ci": list(bootstrap_ci(s, lambda x: fraction_flipped(x, max_support))),
        "median_support": median_support(s, max_support),
        "max_support": int(max_support),
    }


def summarize(run_dir: Path, support: pd.DataFrame, max_support: int, extra: dict[str, Any]) -> dict:
    """Write summary.json and cdf.png; return the summary dict."""
    s = support["support"].to_numpy()
    summary = {**headline(s, max_support),
               "cdf": [[k, f] for k, f in support_cdf(s, max_support)], **extra}
    save_json(run_dir / "summary.json", summary)
    plot_cdf(run_dir / "cdf.png", summary, label=str(summary.get("labels", {}).get("method", "method")))
    return summary


def plot_cdf(path: Path, summary: dict, label: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks, fs = zip(*summary["cdf"])
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    ax.step(ks, fs, where="post", label=f"{label} (AUC {summary['auc']:.3f})")
    ax.set_xlim(0, summary["max_support"])
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"support size k ({summary.get('task', 'task')})")
    ax.set_ylabel("fraction of targets flipped within k")
    ax.set_title(f"{summary['n_flipped']}/{summary['n_targets']} targets flipped "
                 f"within {summary['max_support']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def format_table(support: pd.DataFrame, summary: dict, classes: list[str]) -> str:
    """The human-readable end-of-run report: one line per target, then the headline numbers."""
    lines = [f"{'target':>7} {'label':>10} {'flip':>10} {'support':>8} {'trainings':>9}"]
    for row in support.itertuples():
        flip = classes[row.flip_class] if "flip_class" in support.columns else "-"
        sup = f"{row.support}" if row.support != NOT_FOUND else f">{summary['max_support']}"
        lines.append(f"{row.target:>7} {classes[row.label]:>10} {flip:>10} {sup:>8} {row.n_trainings:>9}")
    lo, hi = summary["auc_ci"]
    lines.append(
        f"AUC {summary['auc']:.3f} (95% CI {lo:.3f}..{hi:.3f})   flipped {summary['n_flipped']}/"
        f"{summary['n_targets']} within {summary['max_support']}   median support "
        f"{summary['median_support']} (all targets; >K: not flipped)")
    return "\n".join(lines)
