"""Figures typed by hand into a page: measured quantities outside generated blocks.

A figure is a measured quantity: a duration (`41 s`, `3.2 h`), a ratio (`1.5x`), a size
(`20 MiB`), a rate (`7,000 images/s`), a hedged fraction (`about 0.06`, `~15%`), or a number right
after a metric's name (`AUC 0.138`, `accuracy 0.97`, `LDS of 0.24`). Settings and versions
(`lr 0.5`, `K = 1280`, `Python 3.12`) are not figures, nor is a limit (a duration after
"within", "every", "after", "at most", "up to", "a timeout/limit/budget of"). Not scanned:
generated blocks (they come from results files), code spans and fenced code with a language
(commands and configs: the values a user types), link targets, and lines citing the paper as
`(paper, Table 1)`, `(paper, Fig 3)` or `(paper, l. 192)`: the paper's published numbers, quoted
with their source.
"""
from __future__ import annotations

import re

from bench.docgen.blocks import END, START

NUMBER = r"\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(
    rf"(?<![\w.+-])(?:{NUMBER}\s?(?:ms|s|sec|seconds?|min|minutes?|h|hours?|GPU-hours?)\b"
    rf"|{NUMBER}x(?![\w])"
    rf"|{NUMBER}\s?(?:[KMGT]i?B)\b"
    rf"|{NUMBER}\s?(?:images|img|models|it|steps)/s\b)"
    rf"|(?:\babout|\baround|\broughly|\bnearly|~|≈)\s?[-+]?(?:\d+\.\d+|{NUMBER}%)"
    rf"|\b(?:AUC|LDS|accuracy|loss|speed-?up|CI)\b(?: of| is| at| above| below)?\s{NUMBER}%?")
LIMIT = re.compile(r"(?:within|every|after|at most|up to|(?:timeout|limit|budget) of)\s$")
PAPER_CITATION = re.compile(r"\(paper, (?:Table \d+|Fig \d+|l\. \d+)")
_FENCE = re.compile(r"^\s*```(\S*)")


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the lines a scan reads: outside generated blocks and code with a
    language, code spans and link targets cut out."""
    out, in_block, fence = [], False, None
    for number, line in enumerate(text.splitlines(), 1):
        if START.match(line):
            in_block = True
        elif line == END:
            in_block = False
        elif not in_block:
            opened = _FENCE.match(line)
            if opened and fence is None:
                fence = opened.group(1) or ""
                continue
            if opened:
                fence = None
                continue
            if fence:   # code with a language: commands and configs
                continue
            cut = re.sub(r"`[^`]*`", "", re.sub(r"\]\([^)]*\)", "]", line))
            out.append((number, cut))
    return out


def unbacked(text: str) -> list[tuple[int, str]]:
    """(line number, figure) of each figure typed outside a generated block."""
    return [(number, match.group(0).strip()) for number, line in _prose(text)
            if not PAPER_CITATION.search(line) for match in FIGURE.finditer(line)
            if not LIMIT.search(line[max(0, match.start() - 20):match.start()])]
