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
    assert p.stderr.strip() == "error: task=nosuch is not an option of task; valid: mislabel, remove"


@pytest.mark.parametrize("override,needle", [
    ("search.budget=-3", "search.budget=-3 is out of range"),
    ("device=tpu", "device=tpu is not valid"),
    ("dataset=cifar10", "dataset.root is not set"),
    ("search.max_support=400", "search.max_support=400 is larger than class 0's 142 training images"),
])
def test_bad_values_fail_in_one_line_before_any_work(override, needle, tmp_path):
    p = _run(override, tmp=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "cache" / "pretrain").exists()  # failed before any expensive stage


def test_help_lists_groups_options_settings_and_examples():
    p = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for needle in ("== Groups", "scorer:", "esvm", "Exemplar SVM", "backbone/method:", "== Common settings",
                   "targets.n=10", "== Examples", "experiment=paper_cifar10"):
        assert needle in p.stdout, needle
    assert "powered by Hydra" not in p.stdout


@pytest.mark.parametrize("argv", [["--help"], ["scorer.C=abc"], ["arch.recipe.epochs=abc"],
                                  ["task=mislabel", "scorer=l2"]])
def test_the_command_line_check_and_help_import_no_torch(argv):
    """`--help` and the check before any work read brittle's signatures from source: no torch,
    lightly or Lightning import (seconds each), whatever the error."""
    import subprocess
    import sys
    code = ("import sys\nfrom brittle.cli import app\nsys.argv = ['brittle', *sys.argv[1:]]\napp.register_resolvers()\n"
            "try:\n    app.main() if '--help' in sys.argv else print(app.check_command_line(sys.argv[1:]))\n"
            "finally:\n    heavy = ('torch', 'lightly', 'pytorch_lightning')\n"
            "    print('imported:', sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT).stdout
    assert "imported: []" in out, out
    if argv == ["scorer.C=abc"]:
        assert "scorer.C='abc' has the wrong type: brittle.scorers.esvm.scorer.ExemplarSVM expects float" in out
    if argv == ["arch.recipe.epochs=abc"]:
        assert "trainer.recipe.epochs='abc' has the wrong type: Recipe expects int" in out
