"""Incremental backups driven by changed ranges, and what happens when the ranges lie."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .conftest import MIB, cli, mixed_pieces, write_pattern

CHUNK = 4 * MIB


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_incremental_reads_only_changed_chunks_and_restores_exactly(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    size = 128 * MIB
    write_pattern(image, size, [(off, os.urandom(2 * MIB)) for off in range(0, size, 4 * MIB)])
    full = cli("image", "backup", "--repo", str(repo_path), str(image), "--json").json()
    assert full["mode"] == "full"

    changes = [(9 * CHUNK + 100, b"A" * 5000), (20 * CHUNK, os.urandom(CHUNK)), (31 * CHUNK - 10, b"B" * 20)]
    for offset, data in changes:
        overwrite(image, offset, data)
    ranges = tmp_path / "changed.json"
    ranges.write_text(json.dumps([[o, len(d)] for o, d in changes]))
    inc = cli("image", "backup", "--repo", str(repo_path), str(image), "--changed-ranges", str(ranges), "--json")
    assert inc.code == 0, inc.stderr
    data = inc.json()
    assert data["mode"] == "incremental"
    touched = 4  # chunk 9, chunk 20, chunks 30 and 31
    assert data["bytes_read"] == touched * CHUNK + data["sampled_chunks"] * CHUNK
    assert data["sampled_chunks"] >= 8
    assert data["bytes_unchanged"] == size - touched * CHUNK

    out = tmp_path / "out.raw"
    assert cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out)).code == 0
    assert out.read_bytes() == image.read_bytes()
    first = tmp_path / "first.raw"
    assert cli("image", "restore", "--repo", str(repo_path), full["snapshot"], "--to", str(first)).code == 0
    assert first.read_bytes() != image.read_bytes()


def test_lying_ranges_turn_into_a_full_read_with_the_reason(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    size = 32 * MIB  # 8 chunks: the minimum sample of 8 covers every unchanged chunk
    write_pattern(image, size, mixed_pieces(size, seed=4))
    cli("image", "backup", "--repo", str(repo_path), str(image))
    overwrite(image, 2 * CHUNK + 7, b"changed but not reported")
    ranges = tmp_path / "changed.json"
    ranges.write_text(json.dumps([]))
    inc = cli("image", "backup", "--repo", str(repo_path), str(image), "--changed-ranges", str(ranges), "--json")
    data = inc.json()
    assert data["mode"] == "full"
    assert "not trustworthy" in data["reason"] and "chunk 2" in data["reason"]
    out = tmp_path / "out.raw"
    assert cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out)).code == 0
    assert out.read_bytes() == image.read_bytes()


def test_without_ranges_a_second_backup_is_a_deduplicated_full_read(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 16 * MIB, mixed_pieces(16 * MIB, seed=8))
    cli("image", "backup", "--repo", str(repo_path), str(image))
    overwrite(image, 5 * MIB, os.urandom(MIB))
    data = cli("image", "backup", "--repo", str(repo_path), str(image), "--json").json()
    assert data["mode"] == "full" and "no change-tracking ranges" in data["reason"]
    assert data["bytes_new"] == CHUNK  # only the chunk holding the new MiB


def test_bad_ranges_file_is_refused_clearly(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 8 * MIB, [(0, b"x")])
    cli("image", "backup", "--repo", str(repo_path), str(image))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[0, 10 * MIB]]))
    result = cli("image", "backup", "--repo", str(repo_path), str(image), "--changed-ranges", str(bad))
    assert result.code == 1 and "outside the disk" in result.stderr and "Traceback" not in result.stderr
    bad.write_text("{not json")
    result = cli("image", "backup", "--repo", str(repo_path), str(image), "--changed-ranges", str(bad))
    assert result.code == 1 and "not JSON" in result.stderr
