"""bench/docs.py writes docs/benchmarks.md from the benches' result files: every figure of a
full-size file with the machine, date and commit it came from; smoke files are left out."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _record(bench: str, size: str, cpu: str, date: str, commit: str, gpu: str | None,
            figures: dict) -> dict:
    """A result file as bench/record.py writes it."""
    return {"bench": bench, "size": size, "command": f"python bench/{bench}.py",
            "date": date, "commit": commit,
            "machine": {"cpu": cpu, "cores": 2, "cores_usable": 2, "torch_threads": 2,
                        "torch": "2.14.1", "python": "3.11.9", "gpu": gpu},
            "figures": figures}


def _generate(results: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "bench/docs.py", "--results", str(results),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _section(page: str, bench: str) -> str:
    start = page.index(f"## {bench}\n")
    end = page.find("\n## ", start + 1)
    return page[start:] if end < 0 else page[start:end]


def test_the_page_names_each_figure_with_its_machine_date_and_commit(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    files = {
        "esvm": _record("esvm", "full", "Test CPU A", "2026-12-01T10:00:00+00:00", "a" * 40,
                        None, {"esvm_speedup": 35.123456, "digits_torch_s_per_query": 0.00061,
                               "seed 0: L2": {"mean": 0.18071, "lo": 0.16314, "hi": 0.2}}),
        "retrain": _record("retrain", "full", "Test CPU B", "2026-12-03T11:30:00+00:00",
                           "b" * 40 + "+changes", "NVIDIA H200",
                           {"cf_test_seconds": 0.2, "mlp_models": 260, "identical": True}),
        "search": _record("search", "smoke", "Test CPU C", "2026-12-04T00:00:00+00:00", "c" * 40,
                          None, {"search_speedup": 9.99}),
    }
    for name, record in files.items():
        (results / f"{name}.json").write_text(json.dumps(record))
    out = tmp_path / "benchmarks.md"
    done = _generate(results, out)
    assert done.returncode == 0, done.stderr
    page = out.read_text()

    esvm = _section(page, "esvm")
    assert "Test CPU A" in esvm and "2026-12-01T10:00:00+00:00" in esvm and "a" * 40 in esvm
    assert "| `esvm_speedup` | 35.12 |" in esvm
    assert "| `digits_torch_s_per_query` | 0.00061 |" in esvm
    # a figure that is a record of its own (a mean with its interval): one row, its keys as columns
    assert "| figure | `mean` | `lo` | `hi` |" in esvm
    assert "| `seed 0: L2` | 0.1807 | 0.1631 | 0.2 |" in esvm
    assert "no GPU" in esvm

    retrain = _section(page, "retrain")
    assert "Test CPU B" in retrain and "NVIDIA H200" in retrain
    assert "2026-12-03T11:30:00+00:00" in retrain
    assert "b" * 40 + " (with uncommitted changes)" in retrain
    assert "| `cf_test_seconds` | 0.2 |" in retrain and "| `mlp_models` | 260 |" in retrain
    assert "| `identical` | true |" in retrain

    # a smoke run's figures mean nothing: never on the page
    assert "## search" not in page and "search_speedup" not in page and "Test CPU C" not in page
    assert all(len(line) <= 100 for line in page.splitlines() if not line.startswith("|"))


def test_without_result_files_the_page_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    out = tmp_path / "benchmarks.md"
    done = _generate(tmp_path / "results", out)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "No results yet" in page and "make bench" in page and "\n## " not in page


def test_the_committed_page_holds_every_committed_result():
    """docs/benchmarks.md is regenerated after `make bench` (`make bench-docs`), never typed: each
    full-size result file's commit, date and figures are on it."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    files = sorted((ROOT / "bench" / "results").glob("*.json"))
    records = [json.loads(p.read_text()) for p in files]
    full = [r for r in records if r.get("size") != "smoke"]
    if not full:
        assert "No results yet" in page
    for record in full:
        section = _section(page, record["bench"])
        assert str(record["date"]) in section and str(record["commit"]).split("+")[0] in section
        assert all(f"`{name}`" in section for name in _names(record["figures"]))


def _names(figures: dict) -> list[str]:
    """Every figure's name and, for a figure that is a record, its keys (table columns)."""
    return [*figures, *(k for v in figures.values() if isinstance(v, dict) for k in v)]
