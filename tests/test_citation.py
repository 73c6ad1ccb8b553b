"""LICENSE and CITATION.cff: the licence pyproject.toml names, the tool's version, and the paper
with its arXiv identifier, as the README's first paragraph links it."""
from __future__ import annotations

import re

import yaml

from tests.helpers import ROOT

PAPER = "A Simple and Efficient Baseline for Data Attribution on Images"
ARXIV = "2311.03386"


def _project(key: str) -> str:
    """A top-level value of pyproject.toml's [project] table, as written (Python 3.10 has no
    TOML reader)."""
    text = (ROOT / "pyproject.toml").read_text().split("[project]\n", 1)[1]
    return re.search(rf"^{key} = (.+)$", text, flags=re.M).group(1)


def test_the_licence_file_is_the_licence_pyproject_names():
    text = (ROOT / "LICENSE").read_text()
    assert _project("license") == '{text = "MIT"}'
    assert text.startswith("MIT License\n\nCopyright (c) 2026 The brittle authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_citation_cff_cites_the_tool_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # the keys CFF 1.2.0 requires, and the tool's own
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["title"] == "brittle"
    assert cff["authors"] == [{"name": "The brittle authors"}]
    assert f'"{cff["version"]}"' == _project("version") and cff["license"] == "MIT"
    [paper] = cff["references"]
    assert paper["title"] == PAPER and paper["year"] == 2023
    assert [a["family-names"] for a in paper["authors"]] == [
        "Singla", "Sandoval-Segura", "Goldblum", "Geiping", "Goldstein"]
    assert f"arXiv:{ARXIV}" in [i["value"] for i in paper["identifiers"]]
    assert paper["url"] == f"https://arxiv.org/abs/{ARXIV}"


def test_the_readme_links_the_paper_on_arxiv():
    first = (ROOT / "README.md").read_text().split("\n\n")[1]
    assert PAPER in first and f"](https://arxiv.org/abs/{ARXIV})" in first
