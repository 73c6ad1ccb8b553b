"""Aggregation and figures over a real (tiny) Hydra sweep, a killed run, and mixed sweeps."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from brittle.report.aggregate import aggregate
from brittle.report.aggregate import main as aggregate_main
from brittle.report.build import write_report
from tests.helpers import TINY, run_brittle


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    p = run_brittle(["-m", "scorer=esvm,random", "task=remove,mislabel", "eval=lds",
                     "eval.n_models=12", f"hydra.sweep.dir={base}/multirun",
                     f"cache_dir={base}/cache", *TINY], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (p.stdout + p.stderr).count("computing pretrain") == 1  # the sweep pretrained once
    return base


def test_aggregate_collects_every_job(sweep):
    summary, tidy = aggregate([sweep / "multirun"])
    assert len(summary) == 4 and set(summary["task"]) == {"remove", "mislabel"}
    assert set(summary["method"]) == {"ESVM MoCo (1)", "Random (0)"}
    assert summary["lds"].notna().all()
    assert len(tidy) == 4 * 2 and {"target", "support", "method", "task"} <= set(tidy.columns)


def test_sign_estimation_alone_is_reported_beside_every_lds(sweep):
    """Each run's summary holds the LDS of the sign rule alone on its bank and targets: scipy's
    spearmanr of each target's bank margins against its class count in each subset, recomputed
    here from the cached bank, the run's targets and the digits labels."""
    import json

    import numpy as np
    from scipy.stats import spearmanr

    from brittle.api import load_data
    from tests.helpers import make_cfg

    summary, tidy = aggregate([sweep / "multirun"])
    assert summary["lds_sign_alone"].notna().all() and summary["lds_sign_alone"].nunique() == 1
    data = load_data(make_cfg([], cache_dir=sweep / "cache"))
    (bank,) = [p.parent for p in (sweep / "cache").rglob("masks.npy")]
    masks, margins = np.load(bank / "masks.npy"), np.load(bank / "margins.npy")
    run = next(p for p in (sweep / "multirun").iterdir() if (p / "summary.json").exists())
    train, test = data.train.labels, data.test.labels
    rows = [spearmanr(margins[:, t], masks[:, train == test[t]].sum(1)).statistic
            for t in np.load(run / "targets.npy")]
    expected = float(np.mean(np.nan_to_num(rows)))
    record = json.loads((run / "summary.json").read_text())
    assert record["lds_sign_alone"] == pytest.approx(expected)
    assert summary["lds_sign_alone"].iloc[0] == pytest.approx(expected)
    assert tidy["lds_sign_alone"].notna().all() and tidy["lds"].notna().all()


def test_killed_run_is_named_and_skipped_and_mixed_sweeps_merge(sweep, tmp_path, caplog):
    mixed = tmp_path / "mixed"
    shutil.copytree(sweep / "multirun", mixed / "sweep_a")
    shutil.copytree(sweep / "multirun", mixed / "sweep_b")  # another sweep in the same folder
    killed = next(p for p in (mixed / "sweep_b").iterdir()
                  if (p / ".hydra" / "overrides.yaml").exists()
                  and "scorer=random" in (p / ".hydra" / "overrides.yaml").read_text())
    (killed / "summary.json").unlink()  # as if killed before summarizing
    caplog.set_level("WARNING")
    summary, _ = aggregate([mixed])
    assert len(summary) == 7
    assert f"skipping incomplete run {killed.resolve()}" in caplog.text


def test_report_and_figures(sweep, tmp_path):
    report = write_report([sweep / "multirun"], tmp_path / "figures", baseline=None)
    text = report.read_text()
    for name in ("support_cdf", "per_target_comparison", "cost", "topk_images", "lds",
                 "auc_heatmap"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 5000, name
        assert (tmp_path / "figures" / f"{name}.pdf").exists()
        assert f"({name}.png)" in text
    assert "python run.py -m" not in text and "python run.py " in text  # per-job commands
    lds_part = text.split("## LDS and sign estimation alone")[1].split("##")[0]
    assert "| ESVM MoCo (1)" in lds_part and "| Random (0)" in lds_part
    assert lds_part.count("| sign estimation alone ") == 1   # one bank, one set of targets
    assert pd.read_csv(tmp_path / "figures" / "summary.csv").shape[0] == 4


def test_aggregate_cli_errors_on_empty(tmp_path):
    assert aggregate_main([str(tmp_path), "--out", str(tmp_path / "f")]) == 2


def test_two_configurations_never_share_a_table_cell(sweep, tmp_path):
    """A run that differs only in a setting outside its labels (here scorer.C) would be one cell
    with the first: the report refuses, naming both runs and the setting."""
    import json
    import re

    mixed = tmp_path / "mixed"
    shutil.copytree(sweep / "multirun", mixed)
    run = next(p for p in mixed.iterdir() if (p / "run_spec.json").exists()
               and json.loads((p / "run_spec.json").read_text())["scorer"].get("C") is not None)
    twin = mixed / "twin"
    shutil.copytree(run, twin)
    spec = json.loads((twin / "run_spec.json").read_text())
    spec["scorer"]["C"] = 1.0
    (twin / "run_spec.json").write_text(json.dumps(spec))
    expected = re.escape("would share one table cell") + r".*scorer.C: (0.1 vs 1.0|1.0 vs 0.1)"
    with pytest.raises(SystemExit, match=expected):
        write_report([mixed], tmp_path / "figures", baseline=None)


def test_runs_that_ranked_alike_share_one_line_of_the_support_cdf(sweep, tmp_path):
    """A run whose topk.npy is another's (an ESVM and its "other classes 0" variant) has its
    ranking digest and supports: the CDF figure draws them as one line named after both."""
    import json

    from brittle.report.figures import dedupe, same_rankings
    runs = tmp_path / "runs"
    shutil.copytree(sweep / "multirun", runs)
    source = next(p for p in runs.iterdir() if "scorer=esvm" in p.name and "task=remove" in p.name)
    twin = runs / "twin"
    shutil.copytree(source, twin)
    summary = json.loads((twin / "summary.json").read_text())
    summary["names"]["method"] = "ESVM twin"
    (twin / "summary.json").write_text(json.dumps(summary))
    spec = json.loads((twin / "run_spec.json").read_text())
    (twin / "run_spec.json").write_text(json.dumps({**spec, "twin": True}))
    table, tidy = dedupe(*aggregate([runs]))
    part = tidy[tidy["task"] == "remove"]
    assert sorted(map(sorted, same_rankings(part))) == [["ESVM MoCo (1)", "ESVM twin (1)"],
                                                        ["Random (0)"]]
    assert table.groupby("task")["ranking"].nunique().to_dict() == {"mislabel": 2, "remove": 2}
