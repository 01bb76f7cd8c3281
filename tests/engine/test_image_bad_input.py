"""`image backup|restore` meeting what a new administrator gives them: files that are not disk
images, a repository holding several sources, only an exported key, a full disk (issue 11)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hvbackup.disk import create_vhdx

from .conftest import MIB, cli, write_pattern


def _snapshots(repo: Path) -> list:
    result = cli("snapshots", "--repo", str(repo), "--json")
    assert result.code == 0, result.stderr
    return result.json()


def _refused(result, *words: str) -> None:
    assert result.code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word.lower() in result.stderr.lower(), result.stderr


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small real filesystem that fills up."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_random_bytes_named_vhdx_are_refused_not_stored_as_raw(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    image.write_bytes(os.urandom(3 * MIB))
    _refused(cli("image", "backup", "-r", str(repo_path), str(image)), "disk.vhdx", "VHDX", ".raw")
    assert _snapshots(repo_path) == []


def test_a_vhdx_with_a_damaged_signature_is_refused(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.vhdx"
    with create_vhdx(image, 16 * MIB, block_size=MIB) as disk:
        disk.write(0, os.urandom(2 * MIB))
        disk.flush()
    with open(image, "r+b") as f:
        f.write(b"vhdxfilX")
    _refused(cli("image", "backup", "-r", str(repo_path), str(image)), "no VHDX signature")
    assert _snapshots(repo_path) == []


def test_a_raw_image_named_vhd_is_refused(tmp_path: Path, repo_path: Path) -> None:
    image = tmp_path / "disk.vhd"
    write_pattern(image, 4 * MIB, [(0, b"not a vhd" * 100)])
    _refused(cli("image", "backup", "-r", str(repo_path), str(image)), "VHD")


def test_an_empty_image_file_is_refused(tmp_path: Path, repo_path: Path) -> None:
    for name in ("empty.img", "empty.vhdx"):
        (tmp_path / name).touch()
        _refused(cli("image", "backup", "-r", str(repo_path), str(tmp_path / name)), name, "empty")
    assert _snapshots(repo_path) == []


def test_image_backup_of_a_folder_is_one_clear_line(tmp_path: Path, repo_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    _refused(cli("image", "backup", "-r", str(repo_path), str(folder)), "images", "is a folder, not a disk image")


def test_image_backup_names_the_format_it_used(tmp_path: Path, repo_path: Path) -> None:
    raw = tmp_path / "disk.img"
    write_pattern(raw, 4 * MIB, [(0, b"raw data" * 100)])
    vhdx = tmp_path / "disk.vhdx"
    with create_vhdx(vhdx, 8 * MIB, block_size=MIB) as disk:
        disk.write(MIB, b"vhdx data" * 100)
        disk.flush()
    as_json = cli("image", "backup", "-r", str(repo_path), str(vhdx), "--json")
    assert as_json.code == 0, as_json.stderr
    assert as_json.json()["format"] == "vhdx"
    text = cli("image", "backup", "-r", str(repo_path), str(raw))
    assert text.code == 0, text.stderr
    assert any(line.split() == ["│", "format", "│", "raw", "│"] for line in text.stdout.splitlines()), text.stdout


def test_image_backup_and_restore_open_with_only_an_exported_key(tmp_path: Path, repo_path: Path) -> None:
    key = tmp_path / "repo.key"
    assert cli("key", "export", "-r", str(repo_path), "-o", str(key)).code == 0
    image = tmp_path / "disk.raw"
    write_pattern(image, 4 * MIB, [(MIB, os.urandom(MIB))])
    backup = cli("image", "backup", "-r", str(repo_path), str(image), "--key-file", str(key), "--json", password=None)
    assert backup.code == 0, backup.stderr
    out = tmp_path / "out.raw"
    restore = cli("image", "restore", "-r", str(repo_path), "latest", "--to", str(out), "--key-file", str(key),
                  password=None)  # fmt: skip
    assert restore.code == 0, restore.stderr
    assert out.read_bytes() == image.read_bytes()


def test_image_restore_of_latest_needs_a_source_when_the_repository_holds_two(tmp_path: Path, repo_path: Path) -> None:
    for name, content in (("web", b"web disk"), ("db", b"db disk")):
        image = tmp_path / f"{name}.raw"
        write_pattern(image, 4 * MIB, [(0, content * 1000)])
        assert cli("image", "backup", "-r", str(repo_path), str(image), "-s", name).code == 0
    ambiguous = cli("image", "restore", "-r", str(repo_path), "latest", "--to", str(tmp_path / "x.raw"))
    assert ambiguous.code != 0 and "ambiguous" in ambiguous.stderr and "db, web" in ambiguous.stderr
    assert not (tmp_path / "x.raw").exists()
    for n, args in enumerate((["latest", "--source", "db"], ["latest", "-s", "db"], ["db:latest"])):
        out = tmp_path / f"db-{n}.raw"
        result = cli("image", "restore", "-r", str(repo_path), *args, "--to", str(out))
        assert result.code == 0, result.stderr
        assert out.read_bytes() == (tmp_path / "db.raw").read_bytes()


@pytest.mark.root
@pytest.mark.parametrize("name", ["out.raw", "out.vhdx"])
def test_a_full_disk_during_image_restore_leaves_no_file_and_says_so(tmp_path: Path, repo_path: Path,
                                                                      name: str) -> None:  # fmt: skip
    image = tmp_path / "disk.raw"
    write_pattern(image, 24 * MIB, [(0, os.urandom(20 * MIB))])
    assert cli("image", "backup", "-r", str(repo_path), str(image)).code == 0
    with tmpfs(tmp_path / "small", "8m") as small:
        result = cli("image", "restore", "-r", str(repo_path), "latest", "--to", str(small / name))
        _refused(result, "No space left on device", name)
        assert os.listdir(small) == []  # neither the target nor a partial file


@pytest.mark.root
def test_a_failed_image_backup_says_stored_chunks_are_kept_until_prune(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    write_pattern(image, 32 * MIB, [(0, os.urandom(32 * MIB))])
    with tmpfs(tmp_path / "small", "12m") as small:
        repo = small / "repo"
        assert cli("init", "-r", str(repo)).code == 0
        result = cli("image", "backup", "-r", str(repo), str(image))
        _refused(result, "No space left on device", "safety window", "hvbackup prune")
        assert result.stderr.count("safety window") == 1, result.stderr
