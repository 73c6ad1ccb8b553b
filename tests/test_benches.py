"""Every bench of `make bench` still runs: its `--smoke` size in a fresh process, writing its
figures (with the machine, date and commit) to the given file, never to bench/results."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

BENCHES = ["pretrain", "esvm", "retrain", "search", "startup", "default_run", "digits_compare",
           "checks"]


def test_make_bench_runs_exactly_these_benches():
    makefile = (ROOT / "Makefile").read_text()
    listed = [line.split("bench/")[1].split(".py")[0] for line in makefile.splitlines()
              if line.startswith("\t$(PY) bench/") and "gpu_" not in line
              and "bench/docs.py" not in line]   # make bench-docs: the page, not a bench
    assert sorted(set(listed)) == sorted(BENCHES)


@pytest.mark.heavy
@pytest.mark.parametrize("name", BENCHES)
def test_a_bench_runs_at_its_smoke_size_and_records_its_figures(name, tmp_path):
    out = tmp_path / f"{name}.json"
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    done = subprocess.run([sys.executable, f"bench/{name}.py", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["bench"] == name and record["size"] == "smoke" and record["figures"]
    assert record["machine"]["cores"] >= 1 and record["machine"]["torch"] and record["date"]
    assert f"figures written to {out}" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in results} == before   # bench/results untouched
