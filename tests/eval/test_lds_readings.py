"""bench/lds_readings.py (docs/lds.md's table) still runs: its --smoke size in a fresh process,
from an empty working directory it leaves empty, printing every reading for the seed asked."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.heavy
def test_lds_readings_bench_runs_at_its_smoke_size(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    bench = [sys.executable, str(ROOT / "bench" / "lds_readings.py"), "--smoke", "--seeds", "5",
             "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "readings.json")]
    done = subprocess.run(bench, cwd=work, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    from bench.lds_readings import ROWS
    for row in ROWS:
        line = next(ln for ln in done.stdout.splitlines() if ln.startswith(f"| {row} |"))
        mean, lo, hi = (float(x) for x in re.findall(r"-?\d+\.\d+", line.split("|")[2]))
        assert -1 <= lo <= mean <= hi <= 1, line
    assert "| seed 5 (20 targets) |" in done.stdout and "minus ESVM inverse_clipped" in done.stdout
    assert re.search(r"seed 5: kept_same_class [\d.]+, kept_at_clip [\d.]+", done.stdout)
    assert list(work.iterdir()) == []
    import json
    record = json.loads((tmp_path / "readings.json").read_text())
    assert record["size"] == "smoke" and record["commit"] and record["machine"]["cpu"]
    alone = record["figures"]["seed 5: sign estimation alone"]
    assert alone["targets"] == 20 and alone["lo"] <= alone["mean"] <= alone["hi"]
