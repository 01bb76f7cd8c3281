"""The vocabulary is a leaf (it imports nothing of hvbackup) and keeps today's strings."""

from __future__ import annotations

import json

from hvbackup.vocabulary import BackupMode, Consistency, Downtime, RequiredConsistency, VmResult

from .test_layers import SRC, imported_packages


def test_the_vocabulary_imports_nothing_of_hvbackup() -> None:
    assert imported_packages(SRC / "vocabulary.py") == set()


def test_the_values_are_the_strings_of_the_json_output() -> None:
    assert [c.value for c in Consistency] == ["application", "filesystem", "crash", "saved-state", "offline", "none"]
    assert [c.value for c in RequiredConsistency] == ["application", "filesystem", "crash"]
    assert [d.value for d in Downtime] == ["never", "save", "shutdown"]
    assert [m.value for m in BackupMode] == ["live", "saved", "shutdown", "offline", "none"]
    assert [r.value for r in VmResult] == ["ok", "below-policy", "partial", "failed", "locked"]
    assert json.dumps({"mode": BackupMode.saved, "consistency": Consistency.saved_state}) == (
        '{"mode": "saved", "consistency": "saved-state"}'
    )


def test_the_rank_puts_offline_with_application_and_saved_state_with_crash() -> None:
    assert Consistency.none.rank < Consistency.crash.rank < Consistency.filesystem.rank < Consistency.application.rank
    assert Consistency.offline.rank == Consistency.application.rank
    # review fix 4: a saved VM's disks without its memory state (.vmrs) are crash-consistent
    assert Consistency.saved_state.rank == Consistency.crash.rank
    assert not Consistency.saved_state.meets(RequiredConsistency.filesystem)
    assert Consistency.saved_state.meets(RequiredConsistency.application, vmrs_captured=True)
    assert not Consistency.crash.meets("filesystem")
