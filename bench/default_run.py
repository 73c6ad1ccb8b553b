"""The default run as a new user makes it: `python run.py` in an empty folder (an empty cache, no
earlier run directory), its output as printed and its summary's figures.

The README's "Its output" block and the run's table in docs/comparing.md are generated from
this file (`make docs`), so the output they show is one a run printed, with its machine, date and
commit. The figures: the run's wall time, AUC with its interval, targets flipped, the median
support, the models its searches rest on and the models it trained; the printed lines (log
prefixes cut) are the record's `output`.

    .venv/bin/python bench/default_run.py [--smoke] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402

# tests/helpers.py's TINY: a whole digits run in seconds, for --smoke
SMOKE = ["backbone.epochs=1", "targets.n=2", "search.budget=2", "search.n_test=2",
         "search.max_support=16", "reference.n_models=1", "arch.recipe.epochs=4"]
_PREFIX = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - ")


def run_default(folder: Path, overrides: list[str]) -> tuple[list[str], float]:
    """`python run.py OVERRIDES` with `folder` as the working directory: the printed lines, log
    prefixes cut, and the wall time. A failure exits with the run's last line."""
    env = {k: v for k, v in os.environ.items() if k != "BRITTLE_CACHE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), *overrides], cwd=folder,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    lines = [_PREFIX.sub("", line) for line in done.stdout.splitlines()]
    if done.returncode != 0:
        sys.exit(f"error: python run.py exited with {done.returncode}: "
                 f"{lines[-1] if lines else 'no output'}")
    return lines, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = Record("default_run", args)
    with tempfile.TemporaryDirectory(prefix="brittle-default-run-") as tmp:
        lines, seconds = run_default(Path(tmp), SMOKE if args.smoke else [])
        run_dir = next(line.split(": ", 1)[1] for line in reversed(lines)
                       if line.startswith("run directory: "))
        summary = json.loads((Path(tmp) / run_dir / "summary.json").read_text())
    record.data["output"] = lines
    record.add(wall_seconds=seconds, auc=summary["auc"], auc_ci=summary["auc_ci"],
               n_flipped=summary["n_flipped"], n_targets=summary["n_targets"],
               median_support=summary["median_support"], max_support=summary["max_support"],
               search_models=summary["search_models"],
               models_trained_this_run=summary["models_trained_this_run"])
    print(f"default run: {seconds:.1f} s, AUC {summary['auc']:.3f}, flipped "
          f"{summary['n_flipped']}/{summary['n_targets']}", flush=True)
    record.done()
    return 0


if __name__ == "__main__":
    sys.exit(main())
