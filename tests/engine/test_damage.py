"""A damaged repository: restore fails loudly by default, or zero-fills and says what was lost."""

from __future__ import annotations

import os
from pathlib import Path

from .conftest import MIB, cli, write_pattern

CHUNK = 4 * MIB


def chunk_files(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "chunks").rglob("*") if p.is_file() and not p.name.startswith("."))


def backed_up_image(tmp_path: Path, repo: Path) -> Path:
    image = tmp_path / "disk.raw"
    write_pattern(image, 4 * CHUNK, [(i * CHUNK, os.urandom(CHUNK)) for i in range(4)])
    assert cli("image", "backup", "--repo", str(repo), str(image)).code == 0
    return image


def test_restore_of_a_damaged_snapshot_fails_and_writes_nothing(tmp_path: Path, repo_path: Path) -> None:
    backed_up_image(tmp_path, repo_path)
    victim = chunk_files(repo_path)[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    out = tmp_path / "out.raw"
    result = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out))
    assert result.code == 1
    assert victim.name[:12] in result.stderr or "damaged" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


def test_allow_damaged_zero_fills_and_lists_the_lost_ranges(tmp_path: Path, repo_path: Path) -> None:
    image = backed_up_image(tmp_path, repo_path)
    chunks = chunk_files(repo_path)
    assert len(chunks) == 4
    chunks[1].unlink()
    out = tmp_path / "out.raw"
    result = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out), "--allow-damaged", "--json")
    assert result.code == 3
    damaged = result.json()["damaged"]
    assert len(damaged) == 1 and damaged[0]["length"] == CHUNK
    lost = damaged[0]["offset"]
    original, restored = image.read_bytes(), out.read_bytes()
    assert restored[lost : lost + CHUNK] == bytes(CHUNK)
    assert restored[:lost] + restored[lost + CHUNK :] == original[:lost] + original[lost + CHUNK :]
