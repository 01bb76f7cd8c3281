"""Throughput of SmbFileSource from the engine's thread pool, against samba on the loopback.

    .venv/bin/python -m tests.hyperv.smb_bench [--size-mib 2048] [--threads 1,2,6,8] [--encrypt]

Writes a file of random bytes into a fresh samba share once, then for each thread count evicts it
from the page cache (posix_fadvise DONTNEED: a cold read for smbd) and reads it whole in 4 MiB
chunks with `ordered_map` on new connections, as a backup does. Prints MB/s (10^6 bytes per second), CPU seconds of
this process per GiB, and the reads that failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

import smbclient

from hvbackup.engine.pipeline import ordered_map
from hvbackup.hyperv.smb import SmbCredentials, SmbFileSource

from .samba import PASSWORD, run_samba

CHUNK = 4 * 1024 * 1024


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_once(unc: str, credentials: SmbCredentials, threads: int) -> tuple[float, float, int, str]:
    failures = 0

    def read_chunk(offset: int) -> bytes:
        nonlocal failures
        try:
            data = source.pread(offset, CHUNK)
        except Exception:
            failures += 1
            return b""
        if len(data) != min(CHUNK, source.size - offset):
            failures += 1
        return data

    smbclient.reset_connection_cache()  # each round on new connections, as each backup run starts
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    digest = hashlib.sha256()
    with SmbFileSource(unc, credentials) as source:
        for data in ordered_map(read_chunk, range(0, source.size, CHUNK), workers=threads):
            digest.update(data)
        size = source.size
    seconds = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return size / seconds / 1e6, cpu_seconds / (size / 2**30), failures, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--threads", default="1,2,6,8")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--encrypt", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smb-bench-") as tmp, run_samba(Path(tmp)) as samba:
        path = samba.share / "VMs" / "bench.vhdx"
        digest = hashlib.sha256()
        with open(path, "wb") as f:
            for _ in range(args.size_mib // 64):
                block = os.urandom(64 * 1024 * 1024)
                digest.update(block)
                f.write(block)
        expected = digest.hexdigest()
        credentials = SmbCredentials(username="root", password=PASSWORD, port=samba.port, encrypt=args.encrypt or None)
        unc = "\\\\127.0.0.1\\C$\\VMs\\bench.vhdx"
        mode = "encrypted" if args.encrypt else "signed"
        print(f"{args.size_mib} MiB, {mode}, cold, 4 MiB reads, load {os.getloadavg()[0]:.1f}")
        for threads in [int(t) for t in args.threads.split(",")]:
            for _ in range(args.rounds):
                evict(path)
                rate, cpu_per_gib, failures, got = read_once(unc, credentials, threads)
                same = "bytes match" if got == expected else "BYTES DIFFER"
                print(
                    f"threads {threads}: {rate:6.0f} MB/s, {cpu_per_gib:4.1f} s CPU/GiB, {failures} failed reads, {same}"
                )


if __name__ == "__main__":
    main()
