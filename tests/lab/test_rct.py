"""Change tracking: GetVirtualDiskChanges-style queries cover the disk piecewise and lose nothing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hvbackup.hyperv.errors import ChangeTrackingUnavailable
from hvbackup.lab.rct import ChangeLog, iterate_changes, merge_ranges, query_changes


def test_bounded_queries_return_the_same_ranges_as_one_big_answer(tmp_path: Path) -> None:
    rng = random.Random(7)
    log = ChangeLog(tmp_path, "disk")
    log.create()
    start = log.current_id()
    writes = [(rng.randrange(0, 64 << 20, 512), rng.choice([512, 4096, 1 << 20])) for _ in range(500)]
    log.record(writes)
    changes = log.changes(start)
    assert changes == merge_ranges(writes)
    pieces = list(iterate_changes(changes, 65 << 20, window=3 << 20, max_ranges=5))
    assert merge_ranges(pieces) == changes, "split at window edges, nothing lost or added"
    found, processed = query_changes(changes, 0, 65 << 20, window=64 << 20, max_ranges=2)
    assert len(found) == 2 and 0 < processed < 64 << 20, "stops early and says how far it got"


def test_ids_name_a_position_and_an_epoch(tmp_path: Path) -> None:
    log = ChangeLog(tmp_path, "disk")
    log.create()
    log.record([(0, 512)])
    middle = log.current_id()
    log.record([(4096, 512), (8192, 512)])
    end_position = log.count()
    log.record([(1 << 20, 512)])
    assert log.changes(middle, until=end_position) == [(4096, 512), (8192, 512)]
    log.reset()
    with pytest.raises(ChangeTrackingUnavailable, match="reset"):
        log.changes(middle)
    with pytest.raises(ChangeTrackingUnavailable):
        log.changes(f"rctX:{log.epoch}:99")
