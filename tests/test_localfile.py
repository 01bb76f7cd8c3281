"""hvbackup.localfile: image backups and the local and lab hosts read a file through one class."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import pytest

from hvbackup.disk.errors import DiskError
from hvbackup.disk.source import ByteSource, FileSource
from hvbackup.hyperv.errors import ObjectNotFound, TransportError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.localfile import LocalFile


@pytest.mark.parametrize("source_class", [FileSource, LocalFileSource])
def test_both_folders_read_through_the_one_local_file(tmp_path: Path, source_class: type[LocalFile]) -> None:
    data = os.urandom(1 << 20)
    (tmp_path / "disk.raw").write_bytes(data)
    with source_class(tmp_path / "disk.raw") as source:
        assert isinstance(source, LocalFile) and isinstance(source, ByteSource)
        aligned = memoryview(mmap.mmap(-1, len(data)))  # page-aligned: the O_DIRECT path where there is one
        source.pread_into(aligned, 0)
        assert aligned == data and source.pread(len(data) - 3, 10) == data[-3:]


def test_each_folder_raises_its_own_errors(tmp_path: Path) -> None:
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(DiskError, match="no such file"):
        FileSource(tmp_path / "gone")
    with pytest.raises(DiskError, match="is a folder"):
        FileSource(tmp_path)
    with pytest.raises(ObjectNotFound, match="disk file not found"):
        LocalFileSource(str(tmp_path / "gone"))
    with pytest.raises(TransportError, match="cannot open disk file"):
        LocalFileSource(str(tmp_path))
    with FileSource(tmp_path / "short") as source, pytest.raises(DiskError, match="unexpected end of file"):
        source.pread_into(memoryview(bytearray(8)), 0)
    with LocalFile(tmp_path / "short") as source, pytest.raises(EOFError):
        source.pread_into(memoryview(bytearray(8)), 0)
