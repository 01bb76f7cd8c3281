"""A report split over KVP items comes back whole, and a torn or foreign set is never taken for it."""

from __future__ import annotations

import json

import pytest

from hvbackup import kvpreport
from hvbackup.kvpreport import FREEZE, TornReport, header_key, part_key, reassemble, split

BIG = {"findings": [{"id": f"f{i}", "evidence": "x" * 300} for i in range(20)], "consistency": "application"}


def test_a_large_report_spans_several_items_each_short_enough_for_the_host() -> None:
    items = split(FREEZE, BIG, token="t1")
    assert len(items) > 3
    assert list(items)[-1] == header_key(FREEZE), "the header is written last"
    assert all(len(v) < 1022 and v.isascii() for v in items.values()), "the kernel hands at most 1022 units"
    published = reassemble(FREEZE, items)
    assert published is not None and published.report == BIG and published.token == "t1"


def test_no_header_means_no_report() -> None:
    items = split(FREEZE, BIG)
    del items[header_key(FREEZE)]
    assert reassemble(FREEZE, items) is None


def test_a_missing_part_is_torn() -> None:
    items = split(FREEZE, BIG)
    del items[part_key(FREEZE, 1)]
    with pytest.raises(TornReport, match=r"part 1 .* missing"):
        reassemble(FREEZE, items)


def test_parts_of_two_publications_are_torn_even_when_the_header_is_new() -> None:
    old = split(FREEZE, {**BIG, "consistency": "failed"}, serial="old")
    new = split(FREEZE, BIG, serial="new")
    mixed = {**new, part_key(FREEZE, 2): old[part_key(FREEZE, 2)]}
    with pytest.raises(TornReport, match="publication 'old'"):
        reassemble(FREEZE, mixed)


def test_a_changed_part_fails_the_checksum() -> None:
    items = split(FREEZE, BIG, serial="s")
    key = part_key(FREEZE, 0)
    items[key] = items[key].replace("application", "applicatiom") if "application" in items[key] else items[key] + "x"
    with pytest.raises(TornReport, match="checksum"):
        reassemble(FREEZE, items)


@pytest.mark.parametrize(
    "header",
    ["not json", json.dumps({"v": 2, "serial": "s", "parts": 1, "size": 2, "sha256": "0"}), json.dumps({"v": 1})],
)
def test_a_bad_header_is_torn(header: str) -> None:
    items = split(FREEZE, {"a": 1}, serial="s")
    items[header_key(FREEZE)] = header
    with pytest.raises(TornReport):
        reassemble(FREEZE, items)


def test_a_report_needing_too_many_items_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        split(FREEZE, {"log": "y" * (kvpreport.PART_CHARS * (kvpreport.MAX_PARTS + 1))})


def test_stale_parts_beyond_a_shorter_report_are_found() -> None:
    items = split(FREEZE, BIG)
    assert kvpreport.stale_keys(FREEZE, items, 2) == [part_key(FREEZE, i) for i in range(2, len(items) - 1)]
    assert kvpreport.stale_keys("Readiness", items, 0) == []
