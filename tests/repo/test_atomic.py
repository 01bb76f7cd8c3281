"""Crash safety: a writer killed with SIGKILL at any moment leaves only whole objects behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from hvbackup.repo import Repository
from hvbackup.repo.check import check
from hvbackup.repo.prune import prune

from .conftest import PASSWORD, age_everything, start_proc


@pytest.mark.slow
def test_killed_writers_leave_only_complete_chunks(repo: Repository, repo_path: Path) -> None:
    reported: list[bytes] = []
    for round_ in range(5):
        proc = start_proc("write-loop", repo_path)
        first = proc.stdout.readline()  # it is writing now
        time.sleep(0.05 + 0.03 * round_)
        proc.send_signal(signal.SIGKILL)
        out, _err = proc.communicate()
        reported += [bytes.fromhex(line) for line in (first + out).split() if len(line) == 64]
    assert len(reported) >= 5
    repo.locks.remove_stale()
    with Repository.open(repo_path, PASSWORD) as again:
        stored = set(again.list_chunk_ids())
        assert set(reported) <= stored  # what a writer said was stored, is stored
        for cid in stored:
            again.get_chunk(cid)  # every visible object is whole: tag and hash verify
        assert check(again, read_data=True).ok
        age_everything(repo_path, 2 * 86400)
        prune(again)
    leftovers = [p for p in repo_path.rglob(".tmp-*")]
    assert leftovers == []
