"""kill -9 a backup at random moments: nothing committed is ever lost, and the next run reuses
what the killed one stored."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hvbackup.engine.disk_restore import restore_disk
from hvbackup.repo import Repository

from .conftest import HVBACKUP, MIB, PASSWORD, cli, write_pattern

CHUNK = 4 * MIB
RUNS = 24


def image_for(run: int, path: Path) -> None:
    """Each run's image shares some chunks with earlier ones and adds new ones."""
    rng = random.Random(run)
    common = random.Random(0).randbytes(CHUNK)
    pieces = [(0, common)] + [(i * CHUNK, rng.randbytes(CHUNK)) for i in range(1, 12)]
    write_pattern(path, 12 * CHUNK, pieces)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chunk_count(repo: Path) -> int:
    return sum(1 for p in (repo / "chunks").rglob("*") if p.is_file() and not p.name.startswith("."))


def verify_every_snapshot(repo_path: Path, expected: dict[str, str], scratch: Path) -> None:
    with Repository.open(repo_path, PASSWORD) as repo:
        ids = {s.id for s in repo.list_snapshots()}
        assert set(expected) <= ids
        for snap_id, want in expected.items():
            out = scratch / f"{snap_id}.raw"
            restore_disk(repo, repo.load_snapshot(snap_id), out)
            assert digest(out) == want, f"snapshot {snap_id} no longer restores bit-identical"
            out.unlink()


@pytest.mark.slow
def test_kill_9_during_backup_never_loses_a_snapshot(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    expected: dict[str, str] = {}
    rng = random.Random(42)
    env = {**os.environ, "HVBACKUP_PASSWORD": PASSWORD}
    killed_mid_run = 0
    for run in range(RUNS):
        image_for(run, image)
        proc = subprocess.Popen(
            [HVBACKUP, "image", "backup", "--repo", str(repo_path), "--json", str(image)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.05, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_run += 1
        proc.communicate()

        assert cli("unlock", "--repo", str(repo_path)).code == 0
        verify_every_snapshot(repo_path, expected, scratch)
        check = cli("check", "--repo", str(repo_path), "--read-data")
        assert check.code == 0, check.stdout + check.stderr

        left_by_killed_run = chunk_count(repo_path)
        done = cli("image", "backup", "--repo", str(repo_path), "--json", str(image))
        assert done.code == 0, done.stderr
        summary = done.json()
        assert summary["chunks_new"] == chunk_count(repo_path) - left_by_killed_run  # nothing stored twice
        expected[summary["snapshot"]] = digest(image)
    assert killed_mid_run >= RUNS // 2, "the kills should mostly land while the backup runs"
    verify_every_snapshot(repo_path, expected, scratch)
