"""The docs' generated parts (bench/docs.py, bench/docgen/): every figure in README.md and docs/
comes from a results file in bench/results. The committed pages are what those files make; a
figure typed outside a generated block, a stale page and an absolute path of a machine are each
named by the check; a bench that writes or rewrites a results file leaves the check green, and so
does regenerating the docs after it."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.docgen import PAGES, problems, write
from bench.docgen.benchmarks import page
from bench.docgen.blocks import fill
from bench.docgen.results import records, texts_in, without_paths
from bench.docgen.scan import unbacked
from tests.helpers import ROOT


def _record(bench: str, size: str, cpu: str, date: str, commit: str, gpu: str | None,
            figures: dict, dirty: bool = False) -> dict:
    """A result file as bench/record.py writes it."""
    return {"bench": bench, "size": size, "command": f"python bench/{bench}.py",
            "date": date, "commit": commit, "dirty": dirty,
            "machine": {"cpu": cpu, "cores": 2, "cores_usable": 2, "torch_threads": 2,
                        "torch": "2.14.1", "python": "3.11.9", "gpu": gpu},
            "figures": figures}


def _section(text: str, bench: str) -> str:
    start = text.index(f"## {bench}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_page_names_each_figure_with_its_machine_date_and_commit(capsys):
    files = {
        "esvm": _record("esvm", "full", "Test CPU A", "2026-12-01T10:00:00+00:00", "a" * 40,
                        None, {"esvm_speedup": 35.123456, "digits_torch_s_per_query": 0.00061,
                               "seed 0: L2": {"mean": 0.18071, "lo": 0.16314, "hi": 0.2}}),
        "retrain": _record("retrain", "full", "Test CPU B", "2026-12-03T11:30:00+00:00",
                           "b" * 40, "NVIDIA H200", {"cf_test_seconds": 0.2, "mlp_models": 260,
                                                     "identical": True}),
        "dirty": _record("dirty", "full", "Test CPU D", "2026-12-03T11:30:00+00:00", "d" * 40,
                         None, {"x_seconds": 1.5}, dirty=True),
        "older_dirty": _record("older_dirty", "full", "Test CPU E", "2026-12-03", "e" * 40
                               + "+changes", None, {"y_seconds": 2.5}),
        "search": _record("search", "smoke", "Test CPU C", "2026-12-04T00:00:00+00:00", "c" * 40,
                          None, {"search_speedup": 9.99}),
    }
    found = records({f"{name}.json": json.dumps(r) for name, r in files.items()})
    text = page(ROOT, found)

    esvm = _section(text, "esvm")
    assert "Test CPU A" in esvm and "2026-12-01T10:00:00+00:00" in esvm and "a" * 40 in esvm
    assert "| `esvm_speedup` | 35.12 |" in esvm and "`bench/results/esvm.json`" in esvm
    assert "| `digits_torch_s_per_query` | 0.00061 |" in esvm
    # a figure that is a record of its own (a mean with its interval): one row, its keys as columns
    assert "| figure | `mean` | `lo` | `hi` |" in esvm
    assert "| `seed 0: L2` | 0.1807 | 0.1631 | 0.2 |" in esvm
    assert "no GPU" in esvm

    retrain = _section(text, "retrain")
    assert "Test CPU B" in retrain and "NVIDIA H200" in retrain
    assert "| `cf_test_seconds` | 0.2 |" in retrain and "| `mlp_models` | 260 |" in retrain
    assert "| `identical` | true |" in retrain

    # measured with uncommitted changes: of no commit, refused and named; smoke: left out silently
    for name in ("dirty", "older_dirty", "search"):
        assert f"## {name}" not in text
    assert "with uncommitted changes)" not in text
    assert all(f"Test CPU {c}" not in text for c in "CDE")
    refused = capsys.readouterr().err
    assert "refused bench/results/dirty.json" in refused
    assert "refused bench/results/older_dirty.json" in refused and "search.json" not in refused
    assert all(len(line) <= 100 for line in text.splitlines() if not line.startswith("|"))


def test_without_result_files_the_page_says_so():
    text = page(ROOT, {})
    assert "No results yet" in text and "make bench" in text and "\n## " not in text


def test_commands_lose_the_absolute_paths_of_the_machine():
    command = "python /work/main/bench/lds_readings.py --seeds 0 1 --cache /tmp/lds/cache"
    assert without_paths(command) == "python <path> --seeds 0 1 --cache <path>"
    assert without_paths("python bench/x.py --rounds 2") == "python bench/x.py --rounds 2"


@pytest.mark.parametrize("line", [
    "the ESVM (mean LDS about 0.06) stays below", "a digits MoCo step is 1.5x faster",
    "reference models: test accuracy 0.978, 0.981", "AUC 0.138 (95% CI 0.034..0.263)",
    "decode 11 s, pretrain 70.2 s", "both folders take 20 MiB", "7,000 images/s on an H200",
    "about a third, ~15% of them", "gain about +0.01", "finished in 3.2 h"])
def test_a_measured_figure_typed_by_hand_is_found(line):
    assert unbacked(line), line


@pytest.mark.parametrize("line", [
    "SGD lr 0.5, momentum 0.9, wd 5e-4, label smoothing 0.1", "K = 1280 and 10 targets",
    "Python 3.12, torch 2.14.1, `dattri` 0.3", "a ResNet-9s with a 5x5 stride-2 second conv",
    "8x8 digits, 1,797 images", "`backbone.epochs=30` and `eval.n_models=60`",
    "ours 55%, TRAK (20) 28% (paper, l. 192)", "Ours (1) AUC 0.313 (paper, Table 2)",
    "a 95% bootstrap interval, top 5% kept", "a server silent within 5 seconds is given up",
    "a part stopped after 15 s, at most 8 minutes in all", "about 300 parameters of 50 targets"])
def test_settings_versions_code_and_the_papers_quoted_numbers_are_not_figures(line):
    assert unbacked(line) == [], line


def test_figures_inside_generated_blocks_and_code_with_a_language_are_not_scanned():
    text = "\n".join(["<!-- generated: default-run -->", "AUC 0.138 in 41 s",
                      "<!-- end generated -->", "```bash", "python run.py  # ~2 min", "```",
                      "```", "AUC 0.200", "```"])
    assert unbacked(text) == [(8, "AUC 0.200")]   # output without a language is scanned


def test_a_block_of_unknown_name_or_left_open_is_refused():
    with pytest.raises(ValueError, match="unknown generated block 'nope'"):
        fill("<!-- generated: nope -->\n<!-- end generated -->\n", {})
    with pytest.raises(ValueError, match="has no"):
        fill("<!-- generated: default-run -->\nold\n", {})
    text = "a\n<!-- generated: default-run -->\nold text\n<!-- end generated -->\nb\n"
    filled = fill(text, {})
    assert "old text" not in filled and "python bench/default_run.py" in filled
    assert filled.startswith("a\n<!-- generated: default-run -->\n") and filled.endswith(
        "<!-- end generated -->\nb\n")


def test_the_committed_docs_are_what_the_results_files_make():
    """`make docs` after a bench, then commit: no page stale, no figure typed by hand, no
    absolute path of a machine (`python bench/docs.py --check` lists the same)."""
    assert problems(ROOT) == []


def _git(root: Path, *argv: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=root,
                   check=True, capture_output=True)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A git checkout of the docs, the benches and their results, its docs generated."""
    for part in ("README.md", "docs", "bench/results"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("figures"))
        else:
            shutil.copyfile(source, tmp_path / part)
    for script in (ROOT / "bench").glob("*.py"):
        shutil.copyfile(script, tmp_path / "bench" / script.name)
    write(tmp_path, records(texts_in(tmp_path / "bench" / "results"), quiet=True))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "docs")
    return tmp_path


def test_a_bench_run_leaves_the_check_green_and_regenerating_keeps_it_so(copy):
    assert problems(copy) == []
    results = copy / "bench" / "results"
    new = _record("startup", "full", "New CPU", "2026-12-09T00:00:00+00:00", "f" * 40, None,
                  {"help_seconds": 0.5})
    (results / "brand_new.json").write_text(json.dumps({**new, "bench": "brand_new"}))
    tracked = next(p for p in sorted(results.glob("*.json")) if p.name != "brand_new.json")
    rewritten = json.loads(tracked.read_text())
    rewritten.update(date="2026-12-09T00:00:00+00:00", commit="f" * 40, dirty=False)
    tracked.write_text(json.dumps(rewritten))
    assert problems(copy) == []        # an untracked file and a rewritten one: green
    write(copy, records(texts_in(results), quiet=True))
    assert "## brand_new" in (copy / "docs" / "benchmarks.md").read_text()
    assert problems(copy) == []        # `make docs` after the bench: green too


def test_a_stale_page_and_a_figure_typed_by_hand_fail_the_check(copy):
    readme = copy / "README.md"
    text = readme.read_text()
    start = text.index("<!-- generated: default-run -->")
    marker = "<!-- generated: default-run -->\n"
    readme.write_text(text[:start] + "The default run takes 41 s here.\n\n"
                      + text[start:].replace(marker, marker + "by hand\n", 1))
    benchmarks = copy / PAGES[0]
    benchmarks.write_text(benchmarks.read_text() + "\n- by hand\n")
    found = problems(copy)
    assert any(p.startswith("README.md: not what bench/results makes") for p in found), found
    assert any(p.startswith("docs/benchmarks.md: not what") for p in found), found
    assert any(p.startswith("README.md:") and "'41 s' typed by hand" in p for p in found), found
