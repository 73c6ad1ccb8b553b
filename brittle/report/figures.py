"""Figures from the aggregated tables (the paper's Fig 1, 3, 4, 7 and Tables 1, 2), each saved as
PNG and PDF; brittle/report/build.py puts them into `report.md`. Reads only what the runs stored."""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from brittle.report.aggregate import one_configuration_per_cell  # noqa: E402
from brittle.report.tables import auc_markdown, lds_rows  # noqa: E402
from brittle.runtime.files import atomic_path  # noqa: E402

log = logging.getLogger("brittle.report.figures")


def _save(fig: plt.Figure, out: Path, name: str) -> str:
    for ext in ("png", "pdf"):
        with atomic_path(out / f"{name}.{ext}") as tmp:
            fig.savefig(tmp, format=ext, bbox_inches="tight", dpi=130)
    plt.close(fig)
    return f"{name}.png"


def _palette(methods: list[str]) -> dict[str, tuple]:
    return dict(zip(methods, sns.color_palette("tab10", n_colors=max(len(methods), 3))))


def dedupe(summary: pd.DataFrame, tidy: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One run per (setting, task, method): the same configuration run twice keeps its last
    directory (named in a warning); two configurations that would share a cell are refused
    (`one_configuration_per_cell`). Adds the `setting` column."""
    summary = summary.copy()
    summary["setting"] = summary["dataset"].astype(str) + " / " + summary["arch"].astype(str)
    key = ["setting", "task", "method"]
    one_configuration_per_cell(summary, key)
    dup = summary[summary.duplicated(key, keep="last")]
    for run in dup["run"]:
        log.warning("figures: %s repeats a (dataset, arch, task, method) of a later run; "
                    "using the later", run)
    summary = summary.drop_duplicates(key, keep="last")
    tidy = tidy[tidy["run"].isin(summary["run"])].merge(summary[["run", "setting"]], on="run")
    return summary.reset_index(drop=True), tidy.reset_index(drop=True)


def same_rankings(part: pd.DataFrame) -> list[list[str]]:
    """Methods of one panel grouped by identical rankings (the same `topk.npy` of every target,
    hence the same supports): e.g. an ESVM and its "other classes 0" variant, which differ in
    LDS magnitudes only. Each group in the panel's method order."""
    groups: dict[tuple, list[str]] = {}
    for method, group in part.groupby("method", sort=True):
        rows = group.sort_values("target")
        key = (tuple(rows["ranking"].drop_duplicates()) if "ranking" in rows else (method,),
               tuple(rows["target"]), tuple(rows["support"]))
        groups.setdefault(key, []).append(str(method))
    return list(groups.values())


def _cdf_with_band(ax: plt.Axes, supports: np.ndarray, k_max: int, color: tuple) -> None:
    """The support CDF as steps over k = 0..K, and its 95% pointwise bootstrap band over targets
    (brittle/eval/stats.py: bootstrap_band)."""
    from brittle.eval.stats import bootstrap_band
    ks = np.arange(k_max + 1)

    def curve(s: np.ndarray) -> np.ndarray:
        found = np.where((s >= 0) & (s <= k_max), s, k_max + 1)
        return (found[None, :] <= ks[:, None]).mean(axis=1)
    lo, hi = bootstrap_band(supports, curve)
    ax.fill_between(ks, lo, hi, step="post", color=color, alpha=0.15, lw=0)
    ax.step(ks, curve(supports), where="post", color=color, lw=2)


def cdf_figure(tidy: pd.DataFrame, out: Path) -> str:
    """Support CDF per method with a 95% bootstrap band over targets, one panel per (setting,
    task) (paper Fig 3). Methods with the same ranking are one line named after all of them."""
    panels = sorted(tidy[["setting", "task"]].drop_duplicates().itertuples(index=False))
    colors = _palette(sorted(tidy["method"].unique()))
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    drawn: dict[str, tuple] = {}
    for ax, (setting, task) in zip(axes.flat, panels):
        part = tidy[(tidy["task"] == task) & (tidy["setting"] == setting)]
        for methods in same_rankings(part):
            group = part[part["method"] == methods[0]].sort_values("target")
            name = " = ".join(methods)
            drawn.setdefault(name, colors[methods[0]])
            _cdf_with_band(ax, group["support"].to_numpy(), int(group["max_support"].max()),
                           drawn[name])
        ax.set(xlim=(0, int(part["max_support"].max())), ylim=(0, 1),
               xlabel=f"support size k ({'removed' if task == 'remove' else 'mislabelled'} images)",
               ylabel="fraction of targets flipped within k", title=f"{setting}, task: {task}")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=c, lw=2) for c in drawn.values()]
    fig.legend(handles, list(drawn), title="method (models); shaded: 95% bootstrap band",
               loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, title_fontsize=8,
               frameon=False)
    fig.tight_layout()
    return _save(fig, out, "support_cdf")


def comparison_figure(table: pd.DataFrame, out: Path) -> str | None:
    """Per target: is each method's support smaller, equal or larger than the baseline's (Fig 4);
    `table` from brittle.report.tables.comparisons (the sign-test p-value is printed on each
    bar)."""
    if table.empty:
        return None
    tasks = sorted(table["task"].unique())
    height = 0.6 + 0.45 * table.groupby("task").size().max()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), height), squeeze=False)
    colors = {"smaller": "#2a9d8f", "equal": "#bbbbbb", "larger": "#e76f51"}
    for ax, task in zip(axes[0], tasks):
        part = table[table["task"] == task].set_index("method")
        left = np.zeros(len(part))
        for col in ("smaller", "equal", "larger"):
            ax.barh(part.index, part[col], left=left, color=colors[col], label=col)
            left += part[col].to_numpy()
        for y, (total, p) in enumerate(zip(left, part["p_value"])):
            ax.text(total, y, f"  p={p:.2g}", va="center", fontsize=7)
        ax.set(xlabel="targets", title=f"{task}: support vs {part['baseline'].iloc[0]} (sign test)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    fig.legend(handles, [f"{k} support" for k in colors], loc="lower center", ncol=3, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return _save(fig, out, "per_target_comparison")


def auc_table(summary: pd.DataFrame, out: Path) -> tuple[str, str | None]:
    """AUC arch x method per task with 95% CIs, as markdown (Table 2) and a heatmap."""
    heat = None
    first = summary["dataset"].iloc[0]
    both = summary[summary["dataset"] == first].pivot_table(index=["task", "arch"],
                                                            columns="method", values="auc",
                                                            aggfunc="mean")
    if both.size > 0:
        both.index = [f"{task} / {arch}" for task, arch in both.index]
        fig, ax = plt.subplots(figsize=(1.8 + 1.3 * both.shape[1], 1.4 + 0.55 * both.shape[0]))
        sns.heatmap(both, annot=True, fmt=".3f", cmap="viridis", vmin=0, vmax=1, ax=ax,
                    cbar_kws={"label": "AUC (higher = smaller supports)"})
        ax.set(title=f"AUC of the support CDF ({first})", xlabel="method (models)",
               ylabel="task / retrained arch")
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        heat = _save(fig, out, "auc_heatmap")
    text = auc_markdown(summary)
    (out / "auc.md").write_text(text + "\n")
    return text, heat


def cost_figure(summary: pd.DataFrame, out: Path) -> str:
    """Wall time (scoring + models it needs) against storage per method, log axes (Fig 1)."""
    per = summary.groupby("method").agg(seconds=("score_seconds", "max"),
                                        models=("models_seconds", "max"),
                                        stored=("bytes_stored", "max")).reset_index()
    per["total"] = per["seconds"].fillna(0) + per["models"].fillna(0)
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    colors = _palette(sorted(per["method"]))
    per["x"] = per["total"].clip(lower=1e-3)
    per["y"] = per["stored"].fillna(1).clip(lower=1) / 1e6
    # methods that cost the same (e.g. ESVM and L2 on one backbone) share one point and one label
    per["spot"] = list(zip(np.round(np.log10(per["x"]), 1), np.round(np.log10(per["y"]), 1)))
    for _, group in per.groupby("spot", sort=False):
        x, y = group["x"].iloc[0], group["y"].iloc[0]
        ax.scatter(x, y, s=70, color=colors[group["method"].iloc[0]])
        ax.annotate(" = ".join(group["method"]), (x, y), fontsize=8, xytext=(6, 4),
                    textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="wall time: models + scoring (s)",
           ylabel="storage to score new targets (MB)", title="cost per method")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _save(fig, out, "cost")


def lds_figure(summary: pd.DataFrame, out: Path) -> str | None:
    """Mean LDS per method, and sign estimation alone's as its own bar (report/tables.py)."""
    part = lds_rows(summary)
    if part.empty:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 0.8 + 0.45 * part["method"].nunique()))
    sns.barplot(part, y="method", x="lds", hue="method", legend=False, ax=ax)
    ax.set(xlabel="Linear Datamodeling Score (mean over targets)", ylabel="",
           title="LDS per method")
    ax.axvline(0, color="black", lw=0.8)
    fig.tight_layout()
    return _save(fig, out, "lds")


def _images_of(run_dir: Path):
    """The dataset of a run, rebuilt from its saved Hydra config (cached decode, no recompute)."""
    import inspect

    from hydra.utils import get_method, instantiate
    from omegaconf import OmegaConf

    from brittle.cli.resolvers import register_resolvers
    register_resolvers()
    cfg = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml")
    # a loader that decodes into the cache (CIFAR-10) reads it from the run's cache_dir
    wants = inspect.signature(get_method(cfg.dataset.loader._target_)).parameters
    extra = {"cache_dir": cfg.cache_dir} if "cache_dir" in wants else {}
    return instantiate(cfg.dataset.loader, **extra)


def topk_figure(summary: pd.DataFrame, out: Path, n_show: int = 10) -> str | None:
    """A target and its top training images under each method (Fig 7)."""
    first = summary.sort_values(["setting", "task"]).iloc[0]
    runs = summary[(summary["task"] == first["task"]) & (summary["setting"] == first["setting"])]
    runs = runs[[(Path(r) / ".hydra" / "config.yaml").exists() for r in runs["run"]]]
    if runs.empty:
        return None
    targets = [set(np.load(Path(r) / "targets.npy").tolist()) for r in runs["run"]]
    common = sorted(set.intersection(*targets))
    if not common:
        return None
    target = common[0]
    data = _images_of(Path(runs["run"].iloc[0]))

    def show(ax, img, title):
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0),
                  cmap="gray" if img.shape[0] == 1 else None)
        ax.set_title(title, fontsize=7)
        ax.axis("off")

    fig, axes = plt.subplots(len(runs), n_show + 1,
                             figsize=(1.1 * (n_show + 1), 1.25 * len(runs) + 0.3), squeeze=False)
    for row, run in zip(axes, runs.itertuples()):
        pos = list(np.load(Path(run.run) / "targets.npy")).index(target)
        top = np.load(Path(run.run) / "topk.npy")[pos][:n_show]
        show(row[0], data.test.images[target], f"target #{target}")
        row[0].text(-0.15, 0.5, run.method, transform=row[0].transAxes, ha="right", va="center",
                    fontsize=8)
        for i, idx in enumerate(top):
            show(row[i + 1], data.train.images[idx],
                 f"{i + 1}: {data.train.classes[data.train.labels[idx]]}")
    fig.suptitle(f"top-{n_show} training images for test #{target} "
                 f"(class {data.test.classes[data.test.labels[target]]})", fontsize=9)
    fig.tight_layout()
    return _save(fig, out, "topk_images")
