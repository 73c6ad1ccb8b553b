"""bench/magic_lds.py (docs/lds.md's MAGIC figures) still runs: its --smoke size in a fresh
process, from an empty working directory it leaves empty, with every method in both settings."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.heavy
def test_magic_lds_bench_runs_at_its_smoke_size(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    bench = [sys.executable, str(ROOT / "bench" / "magic_lds.py"), "--smoke", "--seeds", "5",
             "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "magic.json")]
    done = subprocess.run(bench, cwd=work, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(work.iterdir()) == []
    figures = json.loads((tmp_path / "magic.json").read_text())["figures"]
    for setting in ("independent", "same_order"):
        for method in ("MAGIC (1)", "MAGIC (3)", "ESVM MoCo", "TRAK d=512 (5)",
                       "sign estimation alone"):
            cell = figures[f"seed 5: {setting} a=0.99: {method}"]
            assert cell["targets"] == 6 and -1 <= cell["lo"] <= cell["mean"] <= cell["hi"] <= 1
    probe = figures["seed 5: default recipe: probe"]
    assert set(probe) == {"eps 1", "eps 0.1", "eps 0.01", "eps 0.001", "eps 0.0001", "eps 1e-06"}
    assert probe["eps 1e-06"] < 1e-3   # the metagradient is the derivative: exact in float64
    assert "seed 5: recipe arch.recipe.lr=0.02: same_order a=0.99: MAGIC (1)" in figures


@pytest.mark.heavy
def test_magic_runs_bench_runs_at_its_smoke_size(tmp_path):
    """bench/magic_runs.py: scorer=magic's default run per task, with MAGIC's cost recorded."""
    bench = [sys.executable, str(ROOT / "bench" / "magic_runs.py"), "--smoke",
             "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "runs.json")]
    done = subprocess.run(bench, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "runs.json").read_text())["figures"]
    for task in ("remove", "mislabel"):
        run = figures[task]
        assert run["command"].startswith(f"python run.py scorer=magic task={task}")
        assert run["magic_n_models"] == 2 and 0 <= run["auc"] <= 1
        assert run["magic_seconds"] > run["magic_models_seconds"] > 0
