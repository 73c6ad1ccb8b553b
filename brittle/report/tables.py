"""Report tables from aggregated runs: AUC with 95% bootstrap intervals, the LDS with sign
estimation alone as its own row, and per-target comparisons of each method against a baseline
with a paired sign test over targets."""
from __future__ import annotations

import pandas as pd

from brittle.eval.stats import paired_sign_test


def auc_markdown(summary: pd.DataFrame) -> str:
    """Per (dataset, task): arch x method cells 'AUC [lo, hi]', then flipped fraction and median.
    Each cell is one configuration (figures.dedupe refuses two that would share one)."""
    lines = []
    for (dataset, task), part in summary.groupby(["dataset", "task"]):
        cell = part.assign(value=[f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
                                  zip(part["auc"], part["auc_lo"], part["auc_hi"])])
        pivot = cell.pivot_table(index="arch", columns="method", values="value", aggfunc="last")
        lines += [f"**{dataset}, {task}**: AUC (higher = smaller supports) [95% bootstrap CI over "
                  f"targets]", "", pivot.to_markdown(), ""]
        flips = part.assign(value=[f"{f:.2f} ({n}/{t}), median {m}" for f, n, t, m in
                                   zip(part["fraction_flipped"], part["n_flipped"],
                                       part["n_targets"], part["median_support"])])
        pivot = flips.pivot_table(index="arch", columns="method", values="value", aggfunc="last")
        lines += [f"**{dataset}, {task}**: fraction of targets flipped within K, and the median "
                  f"support over all targets ('>K': at least half never flipped)", "",
                  pivot.to_markdown(), ""]
    return "\n".join(lines)


SIGN_ALONE = "sign estimation alone"


def lds_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, arch, method) with an LDS (the task does not change it: same
    attributions, same bank), then sign estimation alone as its own row: one per distinct value
    (runs on other targets or banks have their own), naming the methods it belongs to when
    there are several."""
    cols = ["dataset", "arch", "method", "lds", "lds_lo", "lds_hi"]
    rows: list[dict] = []
    scored = summary.dropna(subset=["lds"])
    for (dataset, arch), group in scored.groupby(["dataset", "arch"], dropna=False):
        methods = group.drop_duplicates("method")
        rows += methods[cols].to_dict("records")
        alone = methods.dropna(subset=["lds_sign_alone"])
        values = alone.groupby(alone["lds_sign_alone"].round(9), sort=False)
        for _, same in values:
            owners = f" (targets of {', '.join(same['method'])})" if values.ngroups > 1 else ""
            name = SIGN_ALONE + owners
            first = same.iloc[0]
            rows.append({"dataset": dataset, "arch": arch, "method": name,
                         **{c: first[f"lds_sign_alone{c[3:]}"] for c in cols[3:]}})
    return pd.DataFrame(rows, columns=cols)


def lds_markdown(summary: pd.DataFrame) -> str:
    """Per (dataset, arch): each method's mean LDS [95% CI] and sign estimation alone's row."""
    lines = []
    for (dataset, arch), part in lds_rows(summary).groupby(["dataset", "arch"], dropna=False):
        cells = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
                 for v, lo, hi in zip(part["lds"], part["lds_lo"], part["lds_hi"])]
        table = pd.DataFrame({"method": part["method"], "LDS [95% CI]": cells})
        lines += [f"**{dataset}, {arch}**: Linear Datamodeling Score, mean over targets; "
                  f"{SIGN_ALONE}: the sign rule without a method, same bank and targets", "",
                  table.to_markdown(index=False), ""]
    return "\n".join(lines)


def comparisons(tidy: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """One row per (setting, task, method): targets where the method's support is smaller,
    equal or larger than the baseline's (default: the random order), and the sign-test p-value."""
    rows = []
    for (setting, task), part in tidy.groupby(["setting", "task"]):
        methods = sorted(part["method"].unique())
        base = (baseline if baseline in methods
                else next((m for m in methods if m.startswith("Random")), methods[0]))
        ref = part[part["method"] == base].set_index("target")["support"]
        k = int(part["max_support"].max())
        for method in methods:
            if method == base:
                continue
            mine = part[part["method"] == method].set_index("target")["support"]
            common = ref.index.intersection(mine.index)
            test = paired_sign_test(mine[common].to_numpy(), ref[common].to_numpy(), k)
            rows.append({"task": f"{setting}, {task}", "method": method, "baseline": base, **test})
    return pd.DataFrame(rows)
