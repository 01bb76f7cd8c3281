"""`hvbackup benchmark`: this machine's speed for each step of the backup hot path.

read (page cache) → keyed BLAKE3 → zstd → AEAD, each on 4 MiB buffers with one thread
and with one thread per core, then the whole pipeline through a throw-away repository. The
slowest step is the machine's limit for a backup; the pipeline figure shows how close we get.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hvbackup.engine.pipeline import ordered_map
from hvbackup.repo.crypto import ZSTD_LEVEL

MIB = 1024 * 1024
CHUNK = 4 * MIB


@dataclass
class Measurement:
    name: str
    threads: int
    bytes: int
    seconds: float

    @property
    def throughput(self) -> float:
        return self.bytes / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "threads": self.threads,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 4),
            "bytes_per_s": round(self.throughput),
        }


def sample_data(total: int, seed: int = 1) -> list[bytes]:
    """Buffers that look like disk content: half text-like (compressible), half random."""
    rng = __import__("random").Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(rng.randint(2, 9))) for _ in range(512)]
    buffers = []
    for n in range(max(1, total // CHUNK)):
        if n % 2:
            buffers.append(os.urandom(CHUNK))
        else:
            text = b" ".join(rng.choice(words) for _ in range(CHUNK // 5))
            buffers.append((text * 2)[:CHUNK])
    return buffers


def _timed(name: str, threads: int, items: list, fn: Callable[[Any], object], size: int | None = None) -> Measurement:
    """Run `fn` over `items` on `threads` workers; `size` is the bytes handled (default: their lengths)."""
    started = time.perf_counter()
    for _ in ordered_map(fn, items, workers=threads):
        pass
    handled = size if size is not None else sum(len(b) for b in items)
    return Measurement(name, threads, handled, time.perf_counter() - started)


def _per_thread(factory: Callable[[], Callable[[bytes], object]]) -> Callable[[bytes], object]:
    """zstd objects are not thread-safe: give each thread its own."""
    local = threading.local()

    def call(data: bytes) -> object:
        fn = getattr(local, "fn", None)
        if fn is None:
            fn = local.fn = factory()
        return fn(data)

    return call


def measure_primitives(total: int, threads: list[int]) -> list[Measurement]:
    buffers = sample_data(total)
    key = os.urandom(32)
    aead = AESGCM(key)
    compressed = [zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(b) for b in buffers]
    steps: list[tuple[str, Callable[[], Callable[[bytes], object]], list[bytes]]] = [
        ("keyed BLAKE3", lambda: lambda b: blake3.blake3(b, key=key).digest(), buffers),
        (f"zstd compress (level {ZSTD_LEVEL})", lambda: zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress, buffers),
        ("zstd decompress", lambda: zstandard.ZstdDecompressor().decompress, compressed),
        ("AES-256-GCM encrypt", lambda: lambda b: aead.encrypt(os.urandom(12), b, None), buffers),
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="hvbackup-bench-") as tmp:
        path = Path(tmp) / "data"
        with open(path, "wb") as f:
            for b in buffers:
                f.write(b)
        fd = os.open(path, os.O_RDONLY)
        try:
            offsets = [i * CHUNK for i in range(len(buffers))]
            for t in threads:
                results.append(
                    _timed("read (page cache)", t, offsets, lambda o: os.pread(fd, CHUNK, o), size=len(offsets) * CHUNK)
                )
        finally:
            os.close(fd)
    plaintext = sum(len(b) for b in buffers)  # every step is rated by the data it stands for
    for name, factory, data in steps:
        for t in threads:
            results.append(_timed(name, t, data, _per_thread(factory), size=plaintext))
    return results


def measure_pipeline(total: int) -> Measurement:
    """A real image backup of `total` bytes of sample data into a throw-away repository."""
    from hvbackup.disk import open_disk
    from hvbackup.engine.disk_backup import DiskBackup
    from hvbackup.repo import Repository

    buffers = sample_data(total, seed=2)
    with tempfile.TemporaryDirectory(prefix="hvbackup-bench-") as tmp:
        image = Path(tmp) / "disk.raw"
        with open(image, "wb") as f:
            for b in buffers:
                f.write(b)
        repo = Repository.init(Path(tmp) / "repo", "benchmark", chunk_size=CHUNK)
        with repo, open_disk(image) as disk:
            started = time.perf_counter()
            DiskBackup(repo, disk).run()
            seconds = time.perf_counter() - started
    return Measurement("whole backup pipeline", os.cpu_count() or 1, sum(len(b) for b in buffers), seconds)
