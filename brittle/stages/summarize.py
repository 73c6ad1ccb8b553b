"""Summarize stage: summary.json, the support CDF figure, and the table printed at the end.

summary.json is the run's typed record, `RunSummary`: the headline numbers with 95% bootstrap
intervals over targets (AUC, fraction flipped; LDS when evaluated, with sign estimation alone on
the same bank and targets beside it, read from lds.parquet), the median support over all
targets (">K" when at least half never flipped), what the run cost (with each stage's seconds
and models trained in this process, and its device), and the labels (method,
backbone, task, arch, trainer, dataset) the run computed itself. Aggregation reads it back with
`RunSummary.read`, never key by key."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brittle.counterfactual.metrics import checks_record, headline, support_cdf
from brittle.counterfactual.searches import NOT_FOUND
from brittle.runtime.files import atomic_path, save_json
from brittle.stages.lds import recorded_sign_alone


@dataclass(frozen=True)
class RunNames:
    """How tables and figures name a run (summary.json "names"); computed by the run itself."""
    method: str
    backbone: str | None
    task: str
    arch: str | None
    trainer: str | None
    dataset: str
    source: str | None = None   # the arch a model-based scorer's models had, when not the search's


@dataclass(frozen=True)
class RunDetails:
    """What the pipeline knows of a run besides its supports (the non-headline summary fields)."""
    task: str
    names: RunNames
    method: str
    choices: dict[str, str]
    reference_accuracy: float
    knn_accuracy: float | None
    score_cost: dict[str, Any]
    search_models: int            # the models the targets' decisions rest on
    models_trained_this_run: int  # models this process trained (0 when resumed complete)
    n_rounds: int
    search: dict[str, Any]
    lds: float | None = None
    lds_ci: list[float] | None = None
    lds_sparsify_top: float | None = None
    # this process's seconds and models trained by stage (brittle/runtime/stagetimes.py; a stage
    # found in the cache: its load time, no models), and the device it ran on
    stage_seconds: dict[str, float] = field(default_factory=dict)
    models_trained: dict[str, int] = field(default_factory=dict)
    device: str | None = None


@dataclass(frozen=True)
class RunSummary(RunDetails):
    """summary.json: the headline over targets, the support CDF ([k, fraction] points) and the
    details. `read` is the one reader (aggregation); unknown keys of a newer writer are kept out."""
    auc: float = 0.0
    auc_ci: list[float] = field(default_factory=list)
    n_targets: int = 0
    n_flipped: int = 0
    fraction_flipped: float = 0.0
    fraction_flipped_ci: list[float] = field(default_factory=list)
    median_support: float | str = 0.0
    max_support: int = 0
    cdf: list[list[float]] = field(default_factory=list)
    lds_sign_alone: float | None = None   # the LDS of the sign rule alone (brittle/eval/lds.py)
    lds_sign_alone_ci: list[float] | None = None
    checks: dict[str, Any] | None = None   # search.verify / refine_budget's outcome (checks_record)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, path: Path) -> RunSummary:
        """The record of a summary.json; ValueError when it is not one (an earlier schema's)."""
        raw = json.loads(Path(path).read_text())
        missing = [f.name for f in fields(cls) if f.name not in raw
                   and not f.name.startswith("lds") and f.name != "checks"]
        if missing or not isinstance(raw.get("names"), dict):
            raise ValueError(f"{path} lacks {missing or ['names']}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        names = RunNames(**{f.name: raw["names"].get(f.name) for f in fields(RunNames)})
        return cls(**{**values, "names": names})


def run(run_dir: Path, support: pd.DataFrame, max_support: int, details: RunDetails) -> RunSummary:
    """Write summary.json and cdf.png; return the record."""
    s = support["support"].to_numpy()
    alone = recorded_sign_alone(run_dir)
    summary = RunSummary(**{f.name: getattr(details, f.name) for f in fields(RunDetails)},
                         **headline(s, max_support),
                         cdf=[[k, f] for k, f in support_cdf(s, max_support)],
                         lds_sign_alone=None if alone is None else alone[0],
                         lds_sign_alone_ci=None if alone is None else list(alone[1]),
                         checks=checks_record(support, max_support))
    save_json(run_dir / "summary.json", summary.to_json())
    plot_cdf(run_dir / "cdf.png", summary)
    return summary


def plot_cdf(path: Path, summary: RunSummary) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    curves = [("prefix (the paper's)" if summary.checks else summary.names.method,
               summary.cdf, summary.auc)]
    if summary.checks:
        curves += [(f"{name} on fresh models" if name == "verified" else name,
                    summary.checks[name]["cdf"], summary.checks[name]["auc"])
                   for name in ("verified", "refined")]
    for name, cdf, auc in curves:
        ks, fs = zip(*cdf)
        ax.step(ks, fs, where="post", label=f"{name} (AUC {auc:.3f})")
    ax.set_xlim(0, summary.max_support)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"support size k ({summary.task})")
    ax.set_ylabel("fraction of targets flipped within k")
    ax.set_title(f"{summary.n_flipped}/{summary.n_targets} targets flipped within "
                 f"{summary.max_support}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def format_table(support: pd.DataFrame, summary: RunSummary, classes: list[str]) -> str:
    """The human-readable end-of-run report: one line per target, then the headline numbers."""
    checked = summary.checks is not None
    lines = [f"{'target':>7} {'label':>10} {'flip':>10} {'support':>8} {'models':>7}"
             + (f" {'verified':>9} {'refined':>8}" if checked else "")]
    for row in support.itertuples():
        flip = classes[row.flip_class] if "flip_class" in support.columns else "-"
        sup = f"{row.support}" if row.support != NOT_FOUND else f">{summary.max_support}"
        lines.append(f"{row.target:>7} {classes[row.label]:>10} {flip:>10} {sup:>8} "
                     f"{row.n_models:>7}" + (_checked_cells(row) if checked else ""))
    lo, hi = summary.auc_ci
    lines.append(
        f"AUC {summary.auc:.3f} (95% CI {lo:.3f}..{hi:.3f})   flipped {summary.n_flipped}/"
        f"{summary.n_targets} within {summary.max_support}   median support "
        f"{summary.median_support} (all targets; >K: not flipped)")
    if summary.checks:
        lines.append(_checks_line(summary.checks))
    if summary.lds is not None and summary.lds_ci:
        lo, hi = summary.lds_ci
        lines.append(f"LDS {summary.lds:.3f} (95% CI {lo:.3f}..{hi:.3f}), top "
                     f"{100 * (summary.lds_sparsify_top or 1):.0f}% of |attributions| kept")
    if summary.lds_sign_alone is not None and summary.lds_sign_alone_ci:
        lo, hi = summary.lds_sign_alone_ci
        lines.append(f"LDS of sign estimation alone {summary.lds_sign_alone:.3f} (95% CI "
                     f"{lo:.3f}..{hi:.3f}; the same bank and targets without a method)")
    return "\n".join(lines)


def _checked_cells(row: Any) -> str:
    """The verified flip rate (`-` where nothing was checked) and the refined support."""
    if np.isnan(row.verified_flip_rate):
        return f" {'-':>9} {'-':>8}"
    refined = f"{row.refined_support}" if row.refined_support >= 0 else "-"
    return f" {row.verified_flip_rate:>9.2f} {refined:>8}"


def _checks_line(checks: dict[str, Any]) -> str:
    line = (f"checks: {checks['n_hold']}/{checks['n_found']} supports found hold on fresh models "
            f"(verified AUC {checks['verified']['auc']:.3f})")
    if "median_refined_of_held" in checks:
        line += (f"; refined median {checks['median_refined_of_held']:g} against prefix median "
                 f"{checks['median_prefix_of_held']:g} over those")
    return line + f"; {checks['check_models']} models"
