"""Helpers for the disk tests: sample raw images, qemu-img, an in-memory byte source."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

MiB = 1024 * 1024


def sample_raw(path: Path, size: int, seed: int = 0) -> bytes:
    """A raw image with random data, zero stretches and holes of several sizes (some unaligned)."""
    rnd = random.Random(seed)
    data = bytearray(size)
    position = 0
    while position < size:
        length = min(rnd.choice([512, 4096, 70_000, 300_000, MiB, 3 * MiB]), size - position)
        if rnd.random() < 0.45:
            data[position : position + length] = rnd.randbytes(length)
        position += length + rnd.choice([0, 512, 8192, 2 * MiB, 5 * MiB])
    path.write_bytes(data)
    return bytes(data)


def qemu_img(*args: str) -> str:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"qemu-img {' '.join(args)} failed: {done.stderr or done.stdout}"
    return done.stdout


def zero_outside(data: bytes, ranges: list[tuple[int, int]]) -> bool:
    """True if every byte outside `ranges` is zero."""
    position = 0
    for offset, length in [*ranges, (len(data), 0)]:
        if data[position:offset].count(0) != offset - position:
            return False
        position = offset + length
    return True


class MemorySource:
    """A ByteSource over bytes, for fuzzing without files."""

    def __init__(self, data: bytes, name: str = "memory.vhdx") -> None:
        self.data = data
        self.name = name
        self.size = len(data)

    def pread(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def close(self) -> None:
        pass
