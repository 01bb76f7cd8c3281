"""File-level restore figures: one 1 GiB file out of a snapshot vs a full disk restore, and
listing a directory of 100,000 entries. No root needed: the disk is built by mke2fs -d.

    .venv/bin/python bench/files_bench.py [--work DIR] [--file-mib 1024] [--entries 100000]

Targets: extracting the file runs at ≥ 0.5× the full restore's throughput; the listing (names,
types, sizes, modes, owners, times: what `hvbackup files ls` prints) takes < 10 s.
`run(work)` returns the rows; bench/run.py may call it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1024 * 1024
PASSWORD = "files-benchmark"
EXTRACT_TARGET = 0.5
LIST_TARGET_S = 10.0


def build_disk(work: Path, file_mib: int, entries: int) -> Path:
    """An ext4 disk image with /big.bin (random, incompressible) and /many/ holding `entries` empty files.

    As root the filesystem is filled through a loop mount (seconds); otherwise mke2fs -d builds
    it, which inserts directory entries one by one and takes minutes for 100,000 of them.
    """
    image = work / "files-bench.raw"
    image.unlink(missing_ok=True)
    size_mib = file_mib + 256 + entries // 1024
    mkfs = ["mke2fs", "-q", "-t", "ext4", "-I", "256", "-N", str(entries + 10_000)]
    if os.geteuid() == 0:
        subprocess.run([*mkfs, str(image), f"{size_mib}M"], check=True, stdout=subprocess.DEVNULL)
        mnt = work / "mnt"
        mnt.mkdir(exist_ok=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
        try:
            _fill(mnt, file_mib, entries)
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
        return image
    tree = work / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    _fill(tree, file_mib, entries)
    subprocess.run([*mkfs, "-d", str(tree), str(image), f"{size_mib}M"], check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    return image


def _fill(root: Path, file_mib: int, entries: int) -> None:
    (root / "many").mkdir(parents=True)
    with open(root / "big.bin", "wb") as f:
        f.writelines(os.urandom(MIB) for _ in range(file_mib))
    for i in range(entries):
        open(root / "many" / f"entry-{i:06d}", "wb").close()


def _timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(work: Path, file_mib: int = 1024, entries: int = 100_000) -> list[dict]:
    from hvbackup.engine.disk_restore import restore_disk
    from hvbackup.engine.files.extract import extract
    from hvbackup.engine.files.source import open_filesystem
    from hvbackup.engine.image_backup import backup_image
    from hvbackup.repo import Repository

    work.mkdir(parents=True, exist_ok=True)
    image = build_disk(work, file_mib, entries)
    repo_path = work / "files-repo"
    shutil.rmtree(repo_path, ignore_errors=True)
    rows = []
    with Repository.init(repo_path, PASSWORD, kdf_n=2**14) as repo:
        snap = repo.load_snapshot(backup_image(repo, image).snapshot.id)
        image.unlink()

        restored = work / "restored.raw"
        restored.unlink(missing_ok=True)
        restore = restore_disk(repo, snap, restored, fmt="raw")
        restored.unlink()
        restore_rate = restore.bytes_written / restore.duration_s

        out = work / "extracted"
        shutil.rmtree(out, ignore_errors=True)
        with open_filesystem(repo, snap) as fs:
            extract_s, result = _timed(lambda: extract(fs, "/big.bin", out))
        shutil.rmtree(out)
        extract_rate = result.bytes / extract_s
        ratio = extract_rate / restore_rate
        rows.append(
            {
                "name": f"extract one {file_mib} MiB file vs full disk restore",
                "extract_mb_s": round(extract_rate / 1e6, 1),
                "restore_mb_s": round(restore_rate / 1e6, 1),
                "ratio": round(ratio, 2),
                "target": f">= {EXTRACT_TARGET}",
                "ok": ratio >= EXTRACT_TARGET,
            }
        )

        with open_filesystem(repo, snap) as fs:

            def listing() -> int:
                directory = fs.get("/many")
                return sum(1 for _, entry in fs.iterdir(directory) if entry.stat().mode)

            list_s, count = _timed(listing)
        rows.append(
            {
                "name": f"list a directory of {count} entries (with stat)",
                "seconds": round(list_s, 2),
                "entries_per_s": round(count / list_s),
                "target": f"< {LIST_TARGET_S} s",
                "ok": list_s < LIST_TARGET_S and count == entries,
            }
        )
    rows.append(_cli_listing(repo_path, entries))
    shutil.rmtree(repo_path, ignore_errors=True)
    return rows


def _cli_listing(repo_path: Path, entries: int) -> dict:
    """`hvbackup files ls --json` of the big directory, end to end (start, key derivation, output)."""
    hvbackup = Path(sys.executable).parent / "hvbackup"
    env = {**os.environ, "HVBACKUP_PASSWORD": PASSWORD}
    cmd = [str(hvbackup), "files", "ls", "-r", str(repo_path), "latest", "/many", "--json"]
    seconds, proc = _timed(lambda: subprocess.run(cmd, env=env, capture_output=True, check=True))
    count = len(json.loads(proc.stdout))
    return {
        "name": f"`hvbackup files ls --json` of {count} entries, whole command",
        "seconds": round(seconds, 2),
        "target": f"< {LIST_TARGET_S} s",
        "ok": seconds < LIST_TARGET_S and count == entries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--file-mib", type=int, default=1024)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hvb-files-bench-"))
    try:
        rows = run(work, args.file_mib, args.entries)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        figures = ", ".join(f"{k} {v}" for k, v in row.items() if k not in ("name", "ok"))
        print(f"{'PASS' if row['ok'] else 'FAIL'}  {row['name']}: {figures}")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
