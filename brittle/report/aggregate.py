"""Aggregation: run directories -> tidy tables (figures/runs.parquet, figures/summary.csv).

    python -m brittle.report.aggregate [PATHS ...] [--out figures]

Reads what the runs stored (summary.json with the names each run computed, support.parquet,
lds.parquet, score costs) through `RunSummary.read`; recomputes nothing but merged shards'
headline numbers and LDS (each shard scored its own targets). A
directory without a finished summary is named in a warning and skipped.
Runs of different sweeps may sit in one folder: each is identified by its own recorded config.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from brittle.runtime.files import canonical
from brittle.stages.summarize import RunSummary

log = logging.getLogger("brittle.report.aggregate")

DEFAULT_PATHS = ("outputs", "multirun")


def find_runs(paths: list[Path]) -> list[Path]:
    """Every directory under `paths` that a brittle run wrote into (it holds run_spec.json)."""
    found = set()
    for root in paths:
        if (root / "run_spec.json").exists():
            found.add(root.resolve())
        if root.is_dir():
            found.update(p.parent.resolve() for p in root.rglob("run_spec.json"))
    return sorted(found)


def method_name(method: str, n_models: int, source: str | None = None) -> str:
    """The run's own method name with the number of models it used and, when they were not of
    the retraining arch, theirs: 'TRAK d=512 (5)', 'TRAK d=512 (5, resnet9)'."""
    return f"{method} ({n_models}{f', {source}' if source else ''})"


def search_name(search: dict) -> str:
    """'bisection' of a recorded search `_target_` ('brittle:search/bisection', or a user's
    'pkg.module.MySearch' -> 'mysearch')."""
    target = str(search.get("_target_", ""))
    return (target.rsplit("/", 1)[-1] if target.startswith("brittle:")
            else target.rsplit(".", 1)[-1].lower())


def load_run(run_dir: Path) -> tuple[dict, pd.DataFrame] | None:
    """(one summary row, per-target rows) of a finished run, or None when it is incomplete."""
    summary_file, support_file = run_dir / "summary.json", run_dir / "support.parquet"
    if not summary_file.exists() or not support_file.exists():
        return None
    try:
        summary = RunSummary.read(summary_file)
    except (ValueError, TypeError) as exc:
        log.warning("skipping %s: its summary.json is not this brittle's record (%s); rerun it",
                    run_dir, exc)
        return None
    spec = json.loads((run_dir / "run_spec.json").read_text())
    names, cost = summary.names, summary.score_cost or {}
    scorer_models = int(cost.get("n_models", 0))
    row = {
        "run": str(run_dir), "method": method_name(names.method, scorer_models, names.source),
        "scorer": names.method, "backbone": names.backbone, "task": names.task,
        "arch": names.arch, "trainer": names.trainer, "dataset": names.dataset,
        "search": search_name(summary.search), "seed": spec.get("seed"),
        "auc": summary.auc, "auc_lo": summary.auc_ci[0], "auc_hi": summary.auc_ci[1],
        "n_targets": summary.n_targets, "n_flipped": summary.n_flipped,
        "fraction_flipped": summary.fraction_flipped, "median_support": str(summary.median_support),
        "max_support": summary.max_support, "search_models": summary.search_models,
        "lds": summary.lds, "lds_lo": summary.lds_ci[0] if summary.lds_ci else None,
        "lds_hi": summary.lds_ci[1] if summary.lds_ci else None, "scorer_models": scorer_models,
        "lds_sign_alone": summary.lds_sign_alone,
        "lds_sign_alone_lo": summary.lds_sign_alone_ci[0] if summary.lds_sign_alone_ci else None,
        "lds_sign_alone_hi": summary.lds_sign_alone_ci[1] if summary.lds_sign_alone_ci else None,
        "score_seconds": cost.get("seconds"), "models_seconds": cost.get("models_seconds"),
        "bytes_stored": cost.get("bytes_stored"), "peak_bytes": cost.get("peak_bytes"),
        "not_converged": cost.get("not_converged", 0),
        # search.verify / refine_budget: supports found and holding on fresh models
        "n_found": (summary.checks or {}).get("n_found"),
        "n_hold": (summary.checks or {}).get("n_hold"),
        "median_refined_of_held": (summary.checks or {}).get("median_refined_of_held"),
        "shard": (spec.get("targets") or {}).get("shard"),
        "ranking": _digest(run_dir / "topk.npy"),
        "num_shards": (spec.get("targets") or {}).get("num_shards"),
    }
    logical = {**spec, "targets": {k: v for k, v in (spec.get("targets") or {}).items()
                                   if k != "shard"}}
    row["logical_run"] = hashlib.sha1(canonical(logical).encode()).hexdigest()[:12]
    support = _with_lds(pd.read_parquet(support_file), run_dir / "lds.parquet")
    for key in ("run", "method", "scorer", "backbone", "task", "arch", "trainer", "dataset",
                "max_support", "ranking"):
        support[key] = row[key]
    return row, support


def _digest(path: Path) -> str | None:
    """A file's content digest: two runs with equal digests of topk.npy ranked alike."""
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.exists() else None


def _with_lds(support: pd.DataFrame, lds_file: Path) -> pd.DataFrame:
    """Per-target rows with the run's per-target LDS and sign estimation alone (columns `lds`,
    `lds_sign_alone`; absent without eval=lds) joined on the target."""
    if not lds_file.exists():
        return support
    lds = pd.read_parquet(lds_file).rename(columns={"sign_alone": "lds_sign_alone"})
    return support.merge(lds, on="target", how="left")


def merged_checks(supports: pd.DataFrame) -> dict:
    """The checks' counts over the merged shards' targets (support.parquet's columns)."""
    if "holds" not in supports.columns:
        return {}
    holds = supports["holds"].fillna(False).astype(bool)
    return {"n_found": int((supports["support"] >= 0).sum()), "n_hold": int(holds.sum()),
            "median_refined_of_held": (float(supports.loc[holds, "refined_support"].median())
                                       if holds.any() else None)}


def merged_lds(supports: pd.DataFrame) -> dict:
    """The LDS columns of one row for the per-target rows of merged shards: mean over all their
    targets with a 95% bootstrap interval, for the method and for sign estimation alone."""
    from brittle.eval.stats import bootstrap_ci

    out: dict = {}
    for column in ("lds", "lds_sign_alone"):
        if column not in supports or supports[column].isna().all():
            continue
        values = supports[column].dropna().to_numpy()
        lo, hi = bootstrap_ci(values, np.mean)
        out.update({column: float(values.mean()), f"{column}_lo": lo, f"{column}_hi": hi})
    return out


def aggregate(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run summary, per-target tidy table) of every finished run under `paths`."""
    rows, supports = [], []
    for run_dir in find_runs(paths):
        loaded = load_run(run_dir)
        if loaded is None:
            log.warning("skipping incomplete run %s (no summary.json/support.parquet yet)", run_dir)
            continue
        rows.append(loaded[0])
        supports.append(loaded[1])
    summary = pd.DataFrame(rows)
    tidy = pd.concat(supports, ignore_index=True) if supports else pd.DataFrame()
    if not summary.empty and (summary["num_shards"].fillna(1) > 1).any():
        summary, tidy = merge_shards(summary, tidy)
    return summary, tidy


def one_configuration_per_cell(summary: pd.DataFrame, key: list[str]) -> None:
    """Refuse (SystemExit with one error line) two runs of different configurations whose names
    `key` coincide: a table cell or a figure's line would silently show one of them."""
    for _, group in summary.groupby(key, sort=False):
        distinct = group.drop_duplicates("logical_run")
        if len(distinct) < 2:
            continue
        a, b = (Path(r) for r in distinct["run"].iloc[:2])
        spec_a, spec_b = (json.loads((r / "run_spec.json").read_text()) for r in (a, b))
        diff = "; ".join(_differences(spec_a, spec_b)[:3])
        cell = ", ".join(str(group[k].iloc[0]) for k in key)
        raise SystemExit(f"error: runs {a} and {b} would share one table cell ({cell}) but their "
                         f"configs differ ({diff}); give them distinct names (scorer.name, "
                         "arch.name, trainer.name) or report them separately")


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """'key: A vs B' for every leaf where two recorded configs differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} vs {vb!r}")
    return out


def merge_shards(summary: pd.DataFrame, tidy: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join the shards of one logical run (same config but targets.shard) into one row; warn
    about missing shards and drop duplicates (the first directory of a shard wins)."""
    from brittle.counterfactual.metrics import headline

    merged_rows, keep_runs = [], []
    for logical, group in summary.groupby("logical_run", sort=False):
        num = int(group["num_shards"].fillna(1).iloc[0])
        if num <= 1:  # not sharded: every directory is a run of its own
            merged_rows += group.to_dict("records")
            keep_runs += list(group["run"])
            continue
        first = group.drop_duplicates("shard", keep="first")
        for shard, dup in group[group.duplicated("shard", keep="first")].groupby("shard"):
            log.warning("duplicate shard %d of %s: keeping %s, ignoring %s", shard, logical,
                        first[first["shard"] == shard]["run"].iloc[0], list(dup["run"]))
        missing = sorted(set(range(num)) - set(first["shard"].astype(int)))
        if missing:
            log.warning("run %s (%s) is missing shards %s of %d", logical, first["run"].iloc[0],
                        missing, num)
        supports = tidy[tidy["run"].isin(first["run"])]
        row = first.iloc[0].to_dict()
        k = int(row["max_support"])
        merged = headline(supports["support"].to_numpy(), k)
        ranking = _digest_of(first.sort_values("shard")["ranking"])
        row.update(run=f"{Path(row['run']).parent}/{logical}", shard=None, ranking=ranking,
                   n_targets=merged["n_targets"], n_flipped=merged["n_flipped"], auc=merged["auc"],
                   auc_lo=merged["auc_ci"][0], auc_hi=merged["auc_ci"][1],
                   fraction_flipped=merged["fraction_flipped"],
                   median_support=str(merged["median_support"]),
                   search_models=int(first["search_models"].sum()), shards_missing=len(missing),
                   **merged_lds(supports), **merged_checks(supports))
        merged_rows.append(row)
        keep_runs += list(first["run"])
        tidy.loc[tidy["run"].isin(first["run"]), ["run", "ranking"]] = [row["run"], ranking]
    tidy = tidy[tidy["run"].isin(keep_runs) | tidy["run"].isin([r["run"] for r in merged_rows])]
    return pd.DataFrame(merged_rows), tidy.reset_index(drop=True)


def _digest_of(parts: pd.Series) -> str:
    """One digest of the shards' rankings, in shard order."""
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Collect brittle runs into tidy tables.")
    parser.add_argument("paths", nargs="*", type=Path, help="run or sweep directories "
                        f"(default: {' '.join(DEFAULT_PATHS)})")
    parser.add_argument("--out", type=Path, default=Path("figures"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    paths = args.paths or [Path(p) for p in DEFAULT_PATHS if Path(p).exists()]
    summary, tidy = aggregate(paths)
    if summary.empty:
        print(f"error: no finished runs under {[str(p) for p in paths]}", file=sys.stderr)
        return 2
    from brittle.runtime.files import atomic_path
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "runs.parquet") as tmp:
        tidy.to_parquet(tmp, index=False)
    with atomic_path(args.out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    print(summary[["method", "task", "arch", "auc", "auc_lo", "auc_hi", "n_flipped", "n_targets",
                   "median_support"]].to_string(index=False))
    print(f"{len(summary)} runs -> {args.out}/runs.parquet, {args.out}/summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
