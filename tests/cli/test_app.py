"""The command line: bad input gets one clear line and a non-zero exit, no traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, run_brittle


def _run(*args: str, tmp) -> subprocess.CompletedProcess:
    return run_brittle([f"hydra.run.dir={tmp}/run", f"cache_dir={tmp}/cache", *args])


def test_unknown_group_option_lists_the_valid_ones(tmp_path):
    p = _run("scorer=esvm", "task=remove,nosuch", tmp=tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == ("error: task=nosuch is not an option of task; "
                                "valid: mislabel, remove")


@pytest.mark.parametrize("override,needle", [
    ("search.budget=-3", "search.budget=-3 is out of range"),
    ("device=tpu", "device=tpu is not valid"),
    ("dataset=cifar10", "dataset.root is not set"),
    ("search.max_support=400",
     "search.max_support=400 is larger than class 0's 142 training images"),
])
def test_bad_values_fail_in_one_line_before_any_work(override, needle, tmp_path):
    p = _run(override, tmp=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "cache" / "pretrain").exists()  # failed before any expensive stage


def test_help_lists_groups_options_settings_and_examples():
    p = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for needle in ("== Groups", "scorer:", "esvm", "Exemplar SVM", "backbone/method:",
                   "== Common settings", "targets.n=10", "== Examples", "experiment=paper_cifar10",
                   "logs at most how many models it trains", "cache_dir/timings.json"):
        assert needle in p.stdout, needle
    assert "powered by Hydra" not in p.stdout


@pytest.mark.parametrize("argv", [["--help"], ["scorer.C=abc"], ["arch.recipe.epochs=abc"],
                                  ["task=mislabel", "scorer=l2"], ["search.budget=-1"]])
def test_the_command_line_check_and_help_import_no_torch(argv):
    """`--help` and the check before any work read brittle's signatures from source: no torch,
    lightly or Lightning import (seconds each), whatever the error."""
    import subprocess
    import sys
    code = ("import sys\nfrom brittle.cli import app\n"
            "sys.argv = ['brittle', *sys.argv[1:]]\napp.register_resolvers()\n"
            "try:\n"
            "    app.main() if '--help' in sys.argv else "
            "print(app.check_command_line(sys.argv[1:]))\n"
            "finally:\n    heavy = ('torch', 'lightly', 'pytorch_lightning')\n"
            "    print('imported:', sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         cwd=ROOT).stdout
    assert "imported: []" in out, out
    if argv == ["scorer.C=abc"]:
        assert ("scorer.C='abc' has the wrong type: "
                "brittle.scorers.esvm.scorer.ExemplarSVM expects float") in out
    if argv == ["search.budget=-1"]:
        assert "search.budget=-1 is out of range; use 0..30" in out
    if argv == ["arch.recipe.epochs=abc"]:
        assert "trainer.recipe.epochs='abc' has the wrong type: Recipe expects int" in out


def test_a_closed_pipe_ends_quietly():
    """`python run.py --help | head -1`: no BrokenPipeError traceback, a shell tool's status."""
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, 'run.py', '--help'],\n"
            "                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
            "p.stdout.readline(); p.stdout.close()\n"
            "print(p.wait(), repr(p.stderr.read().decode()))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120).stdout
    status, stderr = out.split(" ", 1)
    assert "Traceback" not in stderr and stderr.strip() == "''", stderr
    assert status in ("0", str(128 + 13)), status


@pytest.mark.parametrize("override,needle", [
    ("search.budget=-1", "search.budget=-1 is out of range; use 0..30"),
    ("targets.n=1000", "targets.n=1000 is out of range"),   # judged once the data is loaded
])
def test_bad_input_prints_one_line_once_and_leaves_no_run_directory(override, needle, tmp_path):
    """The error shows once (not also as a log line), and the run directory Hydra made for the
    job is gone: nothing half-written (a value the pre-check judges never gets that far)."""
    p = run_brittle([override, f"cache_dir={tmp_path}/cache", "reference.n_models=1"], cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.count(needle) == 1, p.stderr
    errors = [line for line in p.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and needle in errors[0], p.stderr
    assert not (tmp_path / "outputs").exists(), list((tmp_path / "outputs").rglob("*"))
