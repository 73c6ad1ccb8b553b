"""`make docs`: every generated part of the docs from the results files in bench/results
(bench/docgen/): docs/benchmarks.md, docs/reproduction.md, docs/digits-compare.md, and the
generated blocks of README.md and docs/*.md (`<!-- generated: NAME -->` ... `<!-- end
generated -->`). A results file measured with uncommitted changes, or not a record, is refused
(named on stderr); `--smoke` files are left out.

    python bench/docs.py            # rewrite what changed
    python bench/docs.py --check    # list stale pages and figures typed by hand; exit 1 if any
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.docgen import problems, write  # noqa: E402
from bench.docgen.results import RESULTS, records, texts_in  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The docs' generated parts from bench/results.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list what is stale or typed by hand")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(ROOT)
        print("\n".join(found) or "docs: every generated part is what bench/results makes")
        return 1 if found else 0
    written = write(ROOT, records(texts_in(ROOT / RESULTS)))
    print("written: " + (", ".join(map(str, written)) or "nothing (all up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
