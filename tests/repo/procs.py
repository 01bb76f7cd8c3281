"""Programs the repository tests run in separate processes (to kill them or race them).

Run as: python procs.py ROLE REPO [ARGS]; the passphrase comes from HVBACKUP_PASSWORD.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from hvbackup.repo import DiskIndex, Repository

CHUNK = 64 * 1024


def data(seed: int) -> bytes:
    rng = random.Random(seed)
    return rng.randbytes(CHUNK // 2) + bytes(CHUNK // 2)


def hold_lease(repo: Repository) -> None:
    with repo.backup_lease("test lease held until killed"):
        print("ready", flush=True)
        time.sleep(3600)


def write_loop(repo: Repository) -> None:
    """Store new chunks as fast as possible until killed; print each id once it is stored."""
    rng = random.Random(os.getpid())
    with repo.backup_lease("write loop"):
        while True:
            chunk = rng.randbytes(CHUNK)
            cid = repo.chunk_id(chunk)
            repo.put_chunk(cid, chunk)
            print(cid.hex(), flush=True)


def backup_loop(repo: Repository, count: int) -> None:
    """Snapshots that reuse a chunk an earlier lease stored but no snapshot referenced."""
    for i in range(count):
        with repo.backup_lease(f"backup {i}", wait=60):
            chunks = [data(i), data(1000 + i)]  # data(1000 + i) was stored, unreferenced, in lease i - 1
            ids = bytearray()
            for chunk in chunks:
                cid = repo.chunk_id(chunk)
                if not repo.has_chunk(cid):
                    repo.put_chunk(cid, chunk)
                ids += cid
            orphan = data(1000 + i + 1)
            repo.put_chunk(repo.chunk_id(orphan), orphan)
            repo.commit_snapshot(
                {"source": "racer", "disks": [{"name": "d"}]}, {"d": DiskIndex(2 * CHUNK, CHUNK, bytes(ids))}
            )
        print(f"snapshot {i}", flush=True)
        time.sleep(0.2)  # a gap between backups, for prune to get in


def main() -> None:
    role, path = sys.argv[1], Path(sys.argv[2])
    with Repository.open(path, os.environ["HVBACKUP_PASSWORD"]) as repo:
        if role == "hold-lease":
            hold_lease(repo)
        elif role == "write-loop":
            write_loop(repo)
        elif role == "backup-loop":
            backup_loop(repo, int(sys.argv[3]))
        else:
            raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
