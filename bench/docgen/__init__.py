"""The docs' generated parts (`make docs`, bench/docs.py): whole pages (benchmarks.md,
reproduction.md, digits-compare.md) and generated blocks inside hand-written pages (README.md,
docs/*.md), all from the results files in bench/results; and the check that the committed docs
are what those files make, with no figure typed by hand outside them (tests/test_docs_generated.py).

The check accepts a page that is what either the results files of the last commit or those in
the folder make: a bench that has just written or rewritten a file leaves it green, and so does
`make docs` after it; an untracked results file counts only in the folder's rendering.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from bench.docgen import benchmarks, blocks, digits, ledger
from bench.docgen.results import RESULTS, Records, records, texts_at, texts_in
from bench.docgen.scan import unbacked

PAGES = (Path("docs/benchmarks.md"), Path("docs/reproduction.md"), Path("docs/digits-compare.md"))
_ABSOLUTE_DIRS = ("/work/", "/home/", "/tmp/", "/root/", "/Users/", "/mnt/", "/data/")


def hand_written(root: Path) -> list[Path]:
    """README.md and the docs pages that are not generated whole, relative to `root`."""
    docs = sorted(p.relative_to(root) for p in (root / "docs").glob("*.md"))
    return [Path("README.md"), *(p for p in docs if p not in PAGES)]


def generate(root: Path, found: Records) -> dict[Path, str]:
    """{page: text} of every generated page and every page holding generated blocks."""
    out = {PAGES[0]: benchmarks.page(root, found), PAGES[1]: ledger.page(found),
           PAGES[2]: digits.page(found.get("digits_compare"), found.get("majority_early_stop"))}
    for path in hand_written(root):
        text = (root / path).read_text()
        if blocks.names_in(text):
            out[path] = blocks.fill(text, found)
    return out


def write(root: Path, found: Records) -> list[Path]:
    """Rewrite the pages whose text changes; the pages written."""
    written = []
    for path, text in generate(root, found).items():
        target = root / path
        if not target.exists() or target.read_text() != text:
            tmp = target.with_suffix(".md.tmp")
            tmp.write_text(text)
            tmp.replace(target)
            written.append(path)
    return written


def _committed(root: Path) -> Records | None:
    try:
        return records(texts_at(root), quiet=True)
    except (OSError, subprocess.CalledProcessError):
        return None   # not a git checkout: the folder's files are all there is


def problems(root: Path) -> list[str]:
    """One line per stale page, figure typed outside a generated block, and absolute path of a
    machine in a generated page; empty when the docs are what their results files make."""
    here = generate(root, records(texts_in(root / RESULTS), quiet=True))
    committed = _committed(root)
    at_head = here if committed is None else generate(root, committed)
    out = []
    for path, text in here.items():
        current = (root / path).read_text() if (root / path).exists() else None
        if current not in (text, at_head.get(path)):
            out.append(f"{path}: not what bench/results makes; run `make docs`")
        out += [f"{path}: an absolute path of a machine ({d}...) in a generated page"
                for d in _ABSOLUTE_DIRS if path in PAGES and current and d in current]
    for path in hand_written(root):
        out += [f"{path}:{line}: figure {figure!r} typed by hand; put it in a generated block "
                "(bench/docgen/blocks.py) from a results file"
                for line, figure in unbacked((root / path).read_text())]
    return out
