"""The GPU check (make gpu-check, bench/gpu_check.py) still runs: every part at --smoke size in a
fresh process, ran or skipped with its reason, into a results file with the machine, date and
commit; the parts users run go through their command lines; a budget skips parts cleanly."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CIFAR_TGZ, ROOT, TINY, make_cfg

CLI_PARTS = {"default_job": "python run.py device=auto",
             "design_card": "python run.py experiment=cifar10_fast task=mislabel backbone.epochs=",
             "paper_recipe": "python run.py experiment=paper_cifar10",
             "search_bench": "python bench/search.py --smoke",
             "six_minutes": "python run.py -m experiment=cifar10_esvm_vs_random"}


def _check(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 120
           ) -> tuple[dict, str]:
    out = tmp_path / "gpu_check.json"
    argv = [sys.executable, "bench/gpu_check.py", "--smoke", "--out", str(out), *args]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in (env or os.environ).items() if k != "OUT"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"figures written to {out}" in done.stdout
    return json.loads(out.read_text()), done.stdout


def _results() -> dict:
    return {p: p.stat().st_mtime_ns for p in (ROOT / "bench" / "results").glob("*.json")}


def test_a_budget_of_one_second_skips_every_part_saying_why(tmp_path):
    env = {**os.environ, "BRITTLE_CIFAR10": str(tmp_path / "absent.tar.gz")}
    record, stdout = _check(tmp_path, "--budget", "1", env=env)
    assert record["figures"] == {} and record["errors"] == {} and record["budget_seconds"] == 1
    reasons = {name: part["reason"] for name, part in record["parts"].items()
               if part["status"] == "skipped"}
    assert reasons == record["skipped"] and set(reasons) == set(record["parts"])
    for name, reason in reasons.items():
        assert f"[{name}] skipped: {reason}" in stdout
    assert "CUDA" in reasons["airbench"] and "CIFAR-10" in reasons["design_card"]
    assert reasons["default_job"].startswith("does not fit the budget: estimated")
    assert record["size"] == "smoke" and record["date"] and "commit" in record
    assert record["machine"]["cores"] >= 1 and record["device"]["torch"]


def test_parts_are_chosen_by_name(tmp_path):
    record, stdout = _check(tmp_path, "--budget", "1", "--parts", "moco_probe")
    chosen = [n for n, p in record["parts"].items() if p["reason"] != "not in --parts"]
    assert chosen == ["moco_probe"]
    assert "skipped, not in --parts: default_job, design_card" in stdout
    bad = subprocess.run([sys.executable, "bench/gpu_check.py", "--parts", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "unknown parts ['nope']" in bad.stderr


@pytest.mark.heavy
@pytest.mark.slow
def test_every_part_runs_at_smoke_size_or_says_why_not(tmp_path, request):
    """Minutes on a 2-core CPU: a dozen processes, five of them `python run.py` jobs."""
    cache = request.getfixturevalue("cifar_cache") if CIFAR_TGZ.exists() else tmp_path / "cache"
    before = _results()
    env = {**os.environ, "BRITTLE_CACHE": str(cache)}
    record, stdout = _check(tmp_path, "--budget", "3000", env=env, timeout=1800)
    assert record["errors"] == {}, record["errors"]
    for name, part in record["parts"].items():
        assert part["status"] == "ran" or part["reason"], name
        if part["status"] == "ran":
            assert name in record["figures"] and part["line"] in stdout
    if not CIFAR_TGZ.exists():
        assert "CIFAR-10" in record["skipped"]["design_card"]
        return
    assert set(record["skipped"]) <= {"airbench"}   # CUDA only
    for name, command in CLI_PARTS.items():
        assert record["parts"][name]["command"].startswith(command), name
    stages = record["figures"]["design_card"]["stage_seconds"]
    assert {"data", "reference", "pretrain", "embed", "score", "search"} <= set(stages)
    six = record["figures"]["six_minutes"]
    assert set(six["jobs"]) == {"esvm", "random"} and "support_cdf.png" in six["figures_drawn"]
    assert len(six["auc_difference_ci"]) == 2 and six["n_targets"] == 2
    assert six["report_command"].startswith("python -m brittle.report")
    assert _results() == before   # a smoke run never writes bench/results


def test_a_full_run_files_its_figures_by_date_and_device():
    from bench.gpu.common import slug
    from bench.gpu.runner import results_path
    assert slug("NVIDIA H200") == "nvidia-h200" and slug("NVIDIA A100-SXM4-80GB") == \
        "nvidia-a100-sxm4-80gb"
    path = results_path({"slug": "nvidia-h200"})
    assert path.parent == ROOT / "bench" / "results" and not path.exists()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-nvidia-h200(-\d+)?\.json", path.name)


def test_stage_seconds_and_the_paired_difference_come_from_a_runs_records(tmp_path):
    """A run's summary.json holds each stage's seconds, the models each trained and its device
    (brittle/runtime/stagetimes.py); the check reads them there, never from the log. (Its own
    run from an empty cache: the shared TINY run is resumed by other tests, which rewrites its
    record with what the resume trained.)"""
    from bench.gpu.esvm_vs_random import paired_difference
    from bench.gpu.records import run_figures
    from brittle.pipeline import run as run_pipeline
    base = tmp_path
    run = base / "run"
    summary = run_pipeline(make_cfg(TINY, cache_dir=base / "cache"), run)
    figures = run_figures(run)
    stages, models = figures["stage_seconds"], figures["models_trained"]
    assert set(stages) == {"data", "reference", "targets", "pretrain", "embed", "score", "search"}
    assert all(seconds > 0 for seconds in stages.values()) and figures["device"] == "cpu"
    assert models["search"] == summary.models_trained_this_run == summary.search_models
    assert models["reference"] == 1 and models["pretrain"] == models["score"] == 0
    assert figures["auc"] == summary.auc and figures["n_targets"] == summary.n_targets
    same = paired_difference(run, base / "run")
    assert same["auc_difference"] == 0 and same["auc_difference_ci"] == [0.0, 0.0]
