"""Citations in the code name documents of this repository, and sections that exist in them.

A citation is `docs/NAME.md §N[.M]`, optionally followed by more sections of the same document
(`§1, §5`, `§1-9`, `§2 and §3`), or `docs/NAME.md "Heading"`. Every cited file must exist, every
cited section number must be the number of a heading in it (`### 4. Title` or `### 4.2 Title`),
and a quoted name must be how one of its headings begins.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("src", "tests", "scripts", "bench")
SUFFIXES = {".py", ".ps1", ".md", ".sh", ".toml"}

SECTION = r"§\d+(?:\.\d+)?(?:[-–]§?\d+(?:\.\d+)?)?"
CITATION = re.compile(rf"docs/(?P<doc>[A-Za-z]+\.md)(?P<sections>(?:(?:,| and|;)? ?{SECTION})*)")
SECTION_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
NAMED = re.compile(r'docs/(?P<doc>[A-Za-z]+\.md) "(?P<name>[^"]+)"')
HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
HEADING_NUMBER = re.compile(r"(\d+(?:\.\d+)*)\.? ")
# The shared reference notes that live beside the project, not in it (lower case: docs/HYPERV.md
# and docs/GUEST.md are the project's own).
OUTSIDE = re.compile(r"(?<![A-Za-z])(?:hyperv|users|engine|guest)\.md")
# Pages that still cite them, left to the engineers who own those pages; the facts are already in
# docs/FACTS.md §1-3. Remove a page here once it cites docs/ instead.
STILL_CITING_OUTSIDE: set[str] = set()


def source_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def citations(text: str) -> list[tuple[str, list[str]]]:
    """(document, section numbers) for every citation in `text`; a range gives both ends."""
    return [(m["doc"], SECTION_NUMBERS.findall(m["sections"])) for m in CITATION.finditer(text)]


@cache
def heading_texts(doc: Path) -> tuple[str, ...]:
    text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return tuple(HEADING.findall(text))


def headings(doc: Path) -> set[str]:
    """The section numbers of `doc`'s headings."""
    return {m[1] for m in map(HEADING_NUMBER.match, heading_texts(doc)) if m}


def problems(path: Path, text: str) -> list[str]:
    found = []
    for doc, sections in citations(text):
        target = ROOT / "docs" / doc
        if not target.is_file():
            found.append(f"{path}: docs/{doc} does not exist")
            continue
        found += [f"{path}: docs/{doc} has no section §{s}" for s in sections if s not in headings(target)]
    for m in NAMED.finditer(text):
        target, name = ROOT / "docs" / m["doc"], " ".join(m["name"].split())
        if target.is_file() and not any(h.startswith(name) for h in heading_texts(target)):
            found.append(f'{path}: docs/{m["doc"]} has no heading "{name}"')
    return found


def test_citation_parser_reads_lists_and_ranges() -> None:
    text = 'x (docs/ASSESS.md §2, §3; docs/HYPERV.md §4.1 and §9) "docs/GUEST.md §1-2" docs/GUEST.md "Readiness"'
    assert citations(text) == [
        ("ASSESS.md", ["2", "3"]),
        ("HYPERV.md", ["4.1", "9"]),
        ("GUEST.md", ["1", "2"]),
        ("GUEST.md", []),
    ]


@pytest.mark.parametrize("folder", (*SOURCES, "docs"))
def test_cited_documents_and_sections_exist(folder: str) -> None:
    if not (ROOT / folder).is_dir():
        pytest.skip(f"no {folder}/")
    missing = []
    for path in source_files(folder):
        if path == Path(__file__).resolve():
            continue
        missing += problems(path.relative_to(ROOT), path.read_text(encoding="utf-8", errors="replace"))
    assert not missing, "\n".join(missing)


def test_a_wrong_citation_is_found() -> None:
    text = 'docs/HYPERV.md §1, §99; docs/NOPE.md §1; docs/GUEST.md "Readiness"; docs/LAB.md "No such"'
    assert problems(Path("x.py"), text) == [
        "x.py: docs/HYPERV.md has no section §99",
        "x.py: docs/NOPE.md does not exist",
        'x.py: docs/LAB.md has no heading "No such"',
    ]


def test_src_cites_sections() -> None:
    found = [c for path in source_files("src") for c in citations(path.read_text(encoding="utf-8"))]
    assert sum(len(sections) for _, sections in found) > 50


def outside_citations(path: Path) -> list[str]:
    lines = enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
    return [f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}" for n, line in lines if OUTSIDE.search(line)]


@pytest.mark.parametrize("folder", (*SOURCES, "docs"))
def test_no_citation_of_the_outside_reference_notes(folder: str) -> None:
    if not (ROOT / folder).is_dir():
        pytest.skip(f"no {folder}/")
    hits = []
    for path in source_files(folder):
        if path == Path(__file__).resolve() or str(path.relative_to(ROOT)) in STILL_CITING_OUTSIDE:
            continue
        hits += outside_citations(path)
    assert not hits, "\n".join(hits)


def test_the_pages_left_still_need_it() -> None:
    assert all(outside_citations(ROOT / page) for page in STILL_CITING_OUTSIDE)
