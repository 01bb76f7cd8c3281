"""The filesystem readers on their own: a plain image file, no repository, no snapshot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hvbackup.fs.errors import FilesystemError
from hvbackup.fs.filesystem import FileSystem
from hvbackup.fs.volumes import find_volumes

MIB = 1 << 20


def _ext4_image(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("web-01\n")
    image = tmp_path / "ext4.img"
    with open(image, "wb") as f:
        f.truncate(16 * MIB)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree), str(image)], check=True)
    return image


def test_an_ext4_image_is_found_and_read_from_a_plain_file(tmp_path: Path) -> None:
    image = _ext4_image(tmp_path)
    with open(image, "rb") as stream:
        volumes = [v for v in find_volumes(stream, 512) if v.is_filesystem]
        assert [v.name for v in volumes] == ["disk"]
        fs = FileSystem(volumes[0])
        with fs.open(fs.get("/etc/hostname")) as f:
            assert f.read() == b"web-01\n"


def test_bytes_that_hold_no_filesystem_are_one_clear_error(tmp_path: Path) -> None:
    noise = tmp_path / "noise.img"
    noise.write_bytes(os.urandom(4 * MIB))
    with open(noise, "rb") as stream:
        volumes = list(find_volumes(stream, 512))
        assert volumes and not any(v.is_filesystem for v in volumes)
        with pytest.raises(FilesystemError, match="cannot be read"):
            FileSystem(volumes[0])
