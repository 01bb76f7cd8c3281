"""Benchmark: reading allocated data of a dynamic VHDX from the page cache in 4 MiB pieces.

Run: .venv/bin/python bench/disk_read.py [--allocated-gib 2] [--dir DIR]
Creates a dynamic VHDX with 1 MiB blocks (twice the allocated size, every other 8 MiB allocated,
blocks written in shuffled order),
warms the page cache, then reads every 4 MiB piece that holds allocated data, single-threaded and
with 2 threads. Prints one JSON line, then a line for people.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from hvbackup.disk import create_vhdx, open_disk  # noqa: E402

MiB = 1024 * 1024
PIECE = 4 * MiB


def make_disk(path: str, allocated: int) -> dict[str, float]:
    """Blocks are written in shuffled order, so a 4 MiB read spans blocks scattered in the file."""
    pattern = os.urandom(MiB)
    blocks = [offset + i * MiB for offset in range(0, allocated * 2, 16 * MiB) for i in range(8)]
    random.Random(0).shuffle(blocks)
    disk = create_vhdx(path, allocated * 2, block_size=MiB)
    start = time.perf_counter()
    for offset in blocks:
        disk.write(offset, pattern)
    written = time.perf_counter()
    disk.close()
    return {
        "write_gb_s": round(allocated / (written - start) / 1e9, 3),
        "flush_s": round(time.perf_counter() - written, 2),
    }


def pieces(ranges: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    wanted: set[int] = set()
    for offset, length in ranges:
        wanted.update(range(offset // PIECE, (offset + length - 1) // PIECE + 1))
    return [(i * PIECE, min(PIECE, size - i * PIECE)) for i in sorted(wanted)]


def timed_read(disk, work: list[tuple[int, int]], threads: int) -> tuple[float, int]:
    start = time.perf_counter()
    if threads == 1:
        total = sum(len(disk.read(o, n)) for o, n in work)
    else:
        with ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(lambda piece: len(disk.read(*piece)), work))
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocated-gib", type=float, default=2.0)
    parser.add_argument("--dir", default=None, help="where to create the test disk (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    allocated = int(args.allocated_gib * 1024) * MiB
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = os.path.join(folder, "bench.vhdx")
        write_result = make_disk(path, allocated)
        with open_disk(path) as disk:
            work = pieces(disk.allocated_ranges(), disk.size)
            timed_read(disk, work, 1)  # warm the page cache
            result = {"benchmark": "disk_read", "piece_bytes": PIECE, "allocated_bytes": allocated, **write_result}
            for threads in (1, 2):
                seconds, total = min(timed_read(disk, work, threads) for _ in range(args.repeat))
                result[f"read_{threads}_thread_gb_s"] = round(total / seconds / 1e9, 3)
    print(json.dumps(result))
    print(
        f"4 MiB reads of {allocated / 2**30:.1f} GiB allocated (page cache): "
        f"{result['read_1_thread_gb_s']} GB/s with 1 thread, {result['read_2_thread_gb_s']} GB/s with 2; "
        f"writing it: {result['write_gb_s']} GB/s (then {result['flush_s']} s to flush)"
    )


if __name__ == "__main__":
    main()
