"""The HTML report: a valid, self-contained page (WHATWG parser without a single parse error), and a real
rendering in headless Chromium (Debian package `chromium`, installed by scripts/setup.sh)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import html5lib
import png
import pytest

from hvbackup.assess.html import SEVERITY_COLOURS, render_html
from tests.assess.sample import sample_report

XHTML = "{http://www.w3.org/1999/xhtml}"
WIDTH, HEIGHT = 1280, 2000


def parse_strictly(page: str):
    """html5lib's strict mode raises on every parse error the HTML standard defines (missing doctype,
    stray end tags, bad nesting, duplicate attributes, unescaped '<' in text, ...)."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=True).parse(page)


def elements(tree, tag: str) -> list:
    return list(tree.iter(f"{XHTML}{tag}"))


def test_page_parses_without_a_single_error():
    parse_strictly(render_html(sample_report()))


def test_the_validator_catches_broken_markup():
    with pytest.raises(html5lib.html5parser.ParseError):
        parse_strictly("<!DOCTYPE html><html><head><title>x</title></head><body><p>a</div></body></html>")
    with pytest.raises(html5lib.html5parser.ParseError):
        parse_strictly("<html><head><title>x</title></head><body></body></html>")


def test_page_is_self_contained_and_well_formed():
    tree = parse_strictly(render_html(sample_report()))
    assert tree.tag == f"{XHTML}html" and tree.get("lang") == "en"
    assert any(m.get("charset") == "utf-8" for m in elements(tree, "meta"))
    assert [t.text for t in elements(tree, "title")] == ["hvbackup assessment: hv01.example.com"]
    assert not elements(tree, "link") and not elements(tree, "img") and not elements(tree, "iframe")
    assert all(not s.get("src") for s in elements(tree, "script"))
    assert all(a.get("href", "").startswith("#") for a in elements(tree, "a"))
    ids = [e.get("id") for e in tree.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    assert all(f"#{i}" in {a.get("href") for a in elements(tree, "a")} for i in ids)
    assert all(b.get("type") == "button" for b in elements(tree, "button"))
    assert "url(" not in "".join(s.text or "" for s in elements(tree, "style"))


def test_summary_comes_first_then_each_vm_with_its_fix_commands():
    report = sample_report()
    tree = parse_strictly(render_html(report))
    sections = elements(tree, "section")
    assert sections[0].get("class") == "summary"
    assert [s.get("id") for s in sections[1:]] == ["vm-1", "vm-2", "vm-3"]
    commands = [c.text for c in elements(tree, "code") if c.get("class") != "id"]
    expected = [f.remedy for vm in report.vms for f in vm.findings]
    assert commands == expected


def test_names_are_escaped_not_interpreted():
    page = render_html(sample_report(name="<script>alert(1)</script>"))
    tree = parse_strictly(page)
    assert len(elements(tree, "script")) == 1  # only the page's own copy-button script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is missing: scripts/setup.sh installs it from scripts/debian-packages.txt"
    return found


def screenshot(page: Path, out: Path, profile: Path) -> None:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def _near(colour: tuple[int, int, int], counts: Counter, tolerance: int = 6) -> int:
    return sum(n for c, n in counts.items() if all(abs(a - b) <= tolerance for a, b in zip(c, colour, strict=False)))


@pytest.mark.slow
def test_page_renders_in_headless_chromium(tmp_path: Path):
    page = tmp_path / "report.html"
    page.write_text(render_html(sample_report()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    screenshot(page, shot, tmp_path / "profile")

    width, height, rows, _ = png.Reader(filename=str(shot)).asRGBA8()
    assert (width, height) == (WIDTH, HEIGHT)
    counts: Counter = Counter()
    for row in rows:
        counts.update(zip(row[0::4], row[1::4], row[2::4], strict=False))
    assert len(counts) > 50, "the screenshot is (nearly) blank"
    assert max(counts.values()) < 0.95 * WIDTH * HEIGHT
    assert _near(_rgb(SEVERITY_COLOURS["blocker"]), counts) > 500, "no blocker colour on the page"
    assert _near(_rgb(SEVERITY_COLOURS["warning"]), counts) > 200, "no warning colour on the page"


@pytest.mark.slow
def test_blank_page_fails_the_screenshot_check(tmp_path: Path):
    page = tmp_path / "blank.html"
    page.write_text(
        "<!DOCTYPE html><html lang='en'><head><title>x</title></head><body></body></html>", encoding="utf-8"
    )
    shot = tmp_path / "blank.png"
    screenshot(page, shot, tmp_path / "profile")
    _, _, rows, _ = png.Reader(filename=str(shot)).asRGBA8()
    counts: Counter = Counter()
    for row in rows:
        counts.update(zip(row[0::4], row[1::4], row[2::4], strict=False))
    assert len(counts) <= 2 and _near(_rgb(SEVERITY_COLOURS["blocker"]), counts) == 0
