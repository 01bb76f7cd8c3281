"""The benchmark's disks, generated deterministically.

`make_os_disk` builds a tree that looks like a Linux VM (many small files, compressible logs,
incompressible media and encrypted data, free space), formats it as ext4 with `mke2fs -d` (no
root needed) in a sparse raw image, and converts that to a dynamic VHDX with 1 MiB blocks by
writing only the raw image's data ranges. `make_synthetic_disk` writes a given number of bytes
straight into a dynamic VHDX (for the scaling table and the huge sparse disk).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from hvbackup.disk import create_vhdx, open_disk

MIB = 1024 * 1024
GIB = 1024 * MIB
WORDS = [w.encode() for w in (
    "kernel systemd sshd cron nginx postgres accepted connection from port session opened closed for user root "
    "warning error info debug started stopped reloading configuration request GET POST HTTP/1.1 200 404 500"
).split()]


def _line_pool(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pool = []
    for n in range(8192):
        words = b" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        pool.append(b"Nov 25 %02d:%02d:%02d vm%d %s\n" % (n // 3600 % 24, n // 60 % 60, n % 60, rng.randint(1, 9), words))
    return pool


_POOL = _line_pool(1)


def _text(rng: random.Random, size: int) -> bytes:
    """Log-like text (compresses about 4-5x), built from a pool of lines at C speed."""
    lines = rng.choices(_POOL, k=size // 60 + 16)
    return b"".join(lines)[:size]


def _binary_like(rng: random.Random, size: int) -> bytes:
    """Executable-like: runs of random bytes mixed with repeated structure (compresses ~2x)."""
    block = rng.randbytes(min(size, 4096))
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(rng.randint(64, 512))
        out += block[: rng.randint(64, 1024)]
    return bytes(out[:size])


def build_tree(root: Path, scale: float = 1.0, seed: int = 7) -> int:
    """Write the OS-like tree; returns the bytes written."""
    rng = random.Random(seed)
    total = 0

    def write(rel: str, data: bytes) -> None:
        nonlocal total
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)

    write("etc/hostname", b"bench-vm\n")
    write("etc/fstab", b"UUID=0a1b2c3d / ext4 defaults 0 1\n")
    for i in range(int(20000 * scale)):  # /usr: many small files
        write(f"usr/lib/pkg{i % 400:03d}/file{i:05d}.so", _binary_like(rng, rng.randint(1024, 40 * 1024)))
    for i in range(int(40 * scale)):  # logs: compressible
        write(f"var/log/app{i:02d}.log", _text(rng, 12 * MIB))
    for i in range(int(30 * scale)):  # media: incompressible
        write(f"home/user/media/clip{i:02d}.mp4", rng.randbytes(24 * MIB))
    for i in range(int(8 * scale)):  # encrypted data: incompressible
        write(f"var/lib/vault/blob{i}.enc", rng.randbytes(48 * MIB))
    for i in range(int(4 * scale)):  # a database: half zero pages, half text
        page = b"".join(_text(rng, 4096) if rng.random() < 0.5 else bytes(4096) for _ in range(64))
        write(f"var/lib/postgresql/base/{i}", page * (64 * MIB // len(page)))
    return total


def make_os_disk(vhdx: Path, work: Path, *, virtual_size: int = 8 * GIB, scale: float = 1.0) -> dict:
    """Make (or reuse) the OS-like VHDX. Returns its description."""
    meta = vhdx.with_suffix(".json")
    if vhdx.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("virtual_size") == virtual_size and info.get("scale") == scale:
            return info
    tree = work / "tree"
    raw = work / "os.raw"
    shutil.rmtree(tree, ignore_errors=True)
    written = build_tree(tree, scale)
    raw.unlink(missing_ok=True)
    with open(raw, "wb") as f:
        f.truncate(virtual_size)
    subprocess.run(
        ["mke2fs", "-q", "-F", "-t", "ext4", "-E", "root_owner=0:0", "-d", str(tree), str(raw)],
        check=True, env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    shutil.rmtree(tree)
    raw_to_vhdx(raw, vhdx, virtual_size)
    raw.unlink()
    info = {"virtual_size": virtual_size, "scale": scale, "file_bytes": written,
            "allocated": allocated_bytes(vhdx)}
    meta.write_text(json.dumps(info))
    return info


def raw_to_vhdx(raw: Path, vhdx: Path, size: int) -> None:
    vhdx.unlink(missing_ok=True)
    with open_disk(raw) as src, create_vhdx(vhdx, size, block_size=MIB) as dst:
        for offset, length in src.allocated_ranges():
            for pos in range(offset, offset + length, 16 * MIB):
                n = min(16 * MIB, offset + length - pos)
                dst.write(pos, src.read(pos, n))
        dst.flush()


def allocated_bytes(path: Path) -> int:
    with open_disk(path) as disk:
        return sum(length for _, length in disk.allocated_ranges())


def make_synthetic_disk(vhdx: Path, virtual_size: int, written: int, seed: int = 3) -> None:
    """A dynamic VHDX with `written` bytes of mixed data spread over the disk."""
    rng = random.Random(seed)
    vhdx.unlink(missing_ok=True)
    step = max(MIB, (virtual_size // max(1, written // (4 * MIB))) // MIB * MIB)
    with create_vhdx(vhdx, virtual_size, block_size=MIB) as disk:
        done = 0
        offset = 0
        while done < written and offset < virtual_size:
            n = min(4 * MIB, written - done)
            data = rng.randbytes(n) if rng.random() < 0.5 else _text(rng, n)
            disk.write(offset, data)
            done += n
            offset += step
        disk.flush()


def change_blocks(vhdx: Path, fraction: float, seed: int = 11) -> list[tuple[int, int]]:
    """Overwrite `fraction` of the allocated 1 MiB blocks with new data; returns the changed ranges."""
    rng = random.Random(seed)
    with open_disk(vhdx) as disk:
        blocks = [off for start, length in disk.allocated_ranges() for off in range(start, start + length, MIB)]
    chosen = sorted(rng.sample(blocks, max(1, int(len(blocks) * fraction))))
    from hvbackup.disk import open_vhdx_writer

    with open_vhdx_writer(vhdx) as disk:
        for off in chosen:
            disk.write(off, rng.randbytes(MIB // 2) + _text(rng, MIB // 2))
        disk.flush()
    return [(off, MIB) for off in chosen]
