"""Image backup and restore through the CLI, as an administrator runs them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from hvbackup.disk import create_differencing, create_vhdx, open_disk

from .conftest import MIB, cli, mixed_pieces, write_pattern


def sha(path: Path) -> str:
    with open_disk(path) as disk:
        h = hashlib.sha256()
        for off in range(0, disk.size, 8 * MIB):
            h.update(disk.read(off, min(8 * MIB, disk.size - off)))
        return h.hexdigest()


def test_raw_image_round_trips_to_raw_and_vhdx(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 61 * MIB + 512, mixed_pieces(61 * MIB))
    backup = cli("image", "backup", "--repo", str(repo_path), str(image), "--json")
    assert backup.code == 0, backup.stderr
    summary = backup.json()
    assert summary["mode"] == "full"
    assert summary["bytes_new"] < summary["bytes_read"]  # the repeated block and zeros were not stored again

    raw = tmp_path / "restored.raw"
    restore = cli("image", "restore", "--repo", str(repo_path), summary["snapshot"], "--to", str(raw), "--json")
    assert restore.code == 0, restore.stderr
    assert raw.read_bytes() == image.read_bytes()
    assert os.stat(raw).st_blocks * 512 < raw.stat().st_size  # zero chunks stayed holes

    vhdx = tmp_path / "restored.vhdx"
    restore = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(vhdx), "--verify", "--json")
    assert restore.code == 0, restore.stderr
    assert restore.json()["format"] == "vhdx" and restore.json()["verified"] is True
    assert sha(vhdx) == sha(image)
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "vhdx", "-F", "raw", str(vhdx), str(image)], capture_output=True, text=True
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_second_backup_of_the_same_image_stores_nothing(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 40 * MIB, mixed_pieces(40 * MIB, seed=5))
    first = cli("image", "backup", "--repo", str(repo_path), str(image), "--json").json()
    second = cli("image", "backup", "--repo", str(repo_path), str(image), "--json").json()
    assert first["bytes_new"] > 0
    assert second["bytes_new"] == 0 and second["stored_bytes"] == 0
    assert second["bytes_deduplicated"] == first["bytes_new"] + first["bytes_deduplicated"]
    assert second["parent"] == first["snapshot"]


def test_vhdx_differencing_chain_round_trips(tmp_path: Path, repo_path: Path) -> None:
    base = tmp_path / "base.vhdx"
    child = tmp_path / "child.avhdx"
    with create_vhdx(base, 48 * MIB, block_size=MIB) as disk:
        for offset, data in mixed_pieces(48 * MIB, seed=9):
            disk.write(offset, data)
        disk.flush()
    with create_differencing(child, base) as disk:
        disk.write(5 * MIB + 4096, b"changed in the checkpoint" * 1000)
        disk.write(40 * MIB, os.urandom(2 * MIB))
        disk.flush()
    backup = cli("image", "backup", "--repo", str(repo_path), str(child), "--json")
    assert backup.code == 0, backup.stderr
    with open_disk(child) as disk:
        allocated = sum(n for _, n in disk.allocated_ranges())
    assert backup.json()["bytes_read"] <= allocated + 4 * MIB * 12  # whole chunks around allocated data only
    out = tmp_path / "out.vhdx"
    assert cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out)).code == 0
    assert sha(out) == sha(child)


def test_restore_keeps_the_original_disk_geometry(tmp_path: Path, repo_path: Path) -> None:
    src = tmp_path / "4k.vhdx"
    with create_vhdx(src, 16 * MIB, block_size=8 * MIB, logical_sector_size=4096, physical_sector_size=4096) as disk:
        disk.write(0, os.urandom(3 * MIB))
        disk.flush()
    assert cli("image", "backup", "--repo", str(repo_path), str(src)).code == 0
    out = tmp_path / "out.vhdx"
    assert cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out)).code == 0
    with open_disk(out) as disk:
        assert (disk.block_size, disk.logical_sector_size, disk.size) == (8 * MIB, 4096, 16 * MIB)


def test_restore_refuses_to_overwrite_an_existing_file(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 8 * MIB, [(0, b"data" * 1000)])
    assert cli("image", "backup", "--repo", str(repo_path), str(image)).code == 0
    precious = tmp_path / "precious.raw"
    precious.write_bytes(b"do not lose me")
    result = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(precious))
    assert result.code == 1
    assert "exists" in result.stderr and "Traceback" not in result.stderr
    assert precious.read_bytes() == b"do not lose me"


def test_json_output_is_one_document(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 4 * MIB, [(0, b"x" * 100)])
    result = cli("image", "backup", "--repo", str(repo_path), str(image), "--json")
    data = result.json()  # raises if stdout holds anything but one JSON document
    for key in (
        "snapshot",
        "bytes_read",
        "bytes_new",
        "bytes_deduplicated",
        "bytes_zero",
        "duration_s",
        "throughput_bytes_per_s",
    ):
        assert key in data


def test_missing_repository_and_wrong_password_exit_codes(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 4 * MIB, [(0, b"x" * 100)])
    missing = cli("image", "backup", "--repo", str(tmp_path / "nowhere"), str(image))
    assert missing.code == 10 and "Traceback" not in missing.stderr
    wrong = cli("image", "backup", "--repo", str(repo_path), str(image), password="wrong")
    assert wrong.code == 12 and "Traceback" not in wrong.stderr


@pytest.mark.root
def test_block_device_backup_and_restore(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "dev.img"
    write_pattern(image, 24 * MIB, mixed_pieces(24 * MIB, seed=3))
    target_file = tmp_path / "target.img"
    with open(target_file, "wb") as f:
        f.write(os.urandom(24 * MIB))  # old data that the restore must overwrite, zeros included
    src = subprocess.run(
        ["losetup", "-f", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    dst = subprocess.run(
        ["losetup", "-f", "--show", str(target_file)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        assert cli("image", "backup", "--repo", str(repo_path), src).code == 0
        refused = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", dst)
        assert refused.code == 1 and "--overwrite" in refused.stderr
        done = cli("image", "restore", "--repo", str(repo_path), "latest", "--to", dst, "--overwrite", "--verify")
        assert done.code == 0, done.stderr
    finally:
        subprocess.run(["losetup", "-d", src], check=False)
        subprocess.run(["losetup", "-d", dst], check=False)
    assert target_file.read_bytes() == image.read_bytes()


@pytest.mark.slow
def test_two_gib_raw_round_trip_and_no_new_chunk_on_second_backup(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "big.raw"
    pieces = [(off, os.urandom(4 * MIB)) for off in range(0, 2048 * MIB, 32 * MIB)]
    pieces += [(off + 8 * MIB, (b"%d compressible " % off) * 200000) for off in range(0, 2048 * MIB, 64 * MIB)]
    write_pattern(image, 2048 * MIB, pieces)
    first = cli("image", "backup", "--repo", str(repo_path), str(image), "--json")
    assert first.code == 0, first.stderr
    second = cli("image", "backup", "--repo", str(repo_path), str(image), "--json").json()
    assert second["bytes_new"] == 0
    out = tmp_path / "out.raw"
    assert cli("image", "restore", "--repo", str(repo_path), "latest", "--to", str(out)).code == 0
    assert sha(out) == sha(image)
