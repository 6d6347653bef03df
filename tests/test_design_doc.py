"""Every ``docs/design.md §N`` cited in the package, tests, presets and README names a section
that exists, so citations cannot point into the void when the document or the code changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "design.md"
CITATION = re.compile(r"docs/design\.md((?:\s*§\d+,?)+)")


def _sections() -> set[int]:
    return {int(m.group(1)) for m in re.finditer(r"^## (\d+)\. ", DOC.read_text(encoding="utf-8"), re.M)}


def _citations() -> list[tuple[str, int]]:
    files = [*ROOT.glob("livegesture/**/*.py"), *ROOT.glob("livegesture/configs/*.yaml"),
             *ROOT.glob("tests/**/*.py"), ROOT / "README.md"]
    out = []
    for f in files:
        if f == Path(__file__).resolve():  # this file's examples are not citations
            continue
        for m in CITATION.finditer(f.read_text(encoding="utf-8")):
            out += [(str(f.relative_to(ROOT)), int(n)) for n in re.findall(r"\d+", m.group(1))]
    return out


def test_design_doc_has_the_nine_numbered_sections_in_order():
    text = DOC.read_text(encoding="utf-8")
    numbers = [int(n) for n in re.findall(r"^## (\d+)\. ", text, re.M)]
    assert numbers == list(range(1, 10))


def test_citations_exist_and_name_existing_sections():
    cites = _citations()
    assert len(cites) >= 20  # the package cites the document throughout
    missing = sorted({(f, n) for f, n in cites if n not in _sections()})
    assert not missing, f"citations of sections that docs/design.md lacks: {missing}"


@pytest.mark.parametrize("text, expected", [("see docs/design.md §1, §6 for", [1, 6]),
                                            ("(docs/design.md §12)", [12])])
def test_citation_pattern_reads_every_section_number(text, expected):
    m = CITATION.search(text)
    assert m is not None and [int(n) for n in re.findall(r"\d+", m.group(1))] == expected
