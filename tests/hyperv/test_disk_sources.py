"""Disk sources: local files (host or lab) and the SMB mapping used for a remote host."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from hvbackup.hyperv.errors import AuthenticationError, ObjectNotFound, TransportError
from hvbackup.hyperv.filesource import LocalFileSource
from hvbackup.hyperv.smb import SHARE_ACCESS, SmbCredentials, SmbFileSource, map_smb_error, server_of, unc_path


def test_local_source_reads_any_range_from_many_threads(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "disk.vhdx"
    path.write_bytes(data)
    spans = [(o, 65536 + (o % 3)) for o in range(0, len(data), 40000)]
    with LocalFileSource(str(path)) as source:
        assert source.size == len(data) and source.name == str(path)
        with ThreadPoolExecutor(4) as pool:
            chunks = list(pool.map(lambda span: source.pread(*span), spans))
    assert all(chunk == data[o : o + n] for chunk, (o, n) in zip(chunks, spans, strict=False))


def test_local_source_read_past_the_end_is_short(tmp_path):
    (tmp_path / "d").write_bytes(b"abc")
    with LocalFileSource(str(tmp_path / "d")) as source:
        assert source.pread(1, 10) == b"bc" and source.pread(5, 4) == b""


def test_local_source_missing_file(tmp_path):
    with pytest.raises(ObjectNotFound, match="disk file not found"):
        LocalFileSource(str(tmp_path / "gone.vhdx"))


@pytest.mark.parametrize(
    ("path", "unc"),
    [
        ("C:\\VMs\\web01\\web01.vhdx", "\\\\hv01\\C$\\VMs\\web01\\web01.vhdx"),
        ("d:/Hyper-V/a b.avhdx", "\\\\hv01\\D$\\Hyper-V\\a b.avhdx"),
        ("C:\\ClusterStorage\\Volume1\\db.vhdx", "\\\\hv01\\C$\\ClusterStorage\\Volume1\\db.vhdx"),
        ("\\\\fs01\\vms\\db01\\db01.vhdx", "\\\\fs01\\vms\\db01\\db01.vhdx"),
        ("//fs01/vms/x.vhdx", "\\\\fs01\\vms\\x.vhdx"),
    ],
)
def test_host_paths_map_to_unc(path, unc):
    assert unc_path("hv01", path) == unc


@pytest.mark.parametrize("path", ["web01.vhdx", "\\VMs\\a.vhdx", "C:relative.vhdx"])
def test_relative_paths_are_refused(path):
    with pytest.raises(ObjectNotFound, match="not an absolute Windows path"):
        unc_path("hv01", path)


def test_server_of_unc():
    assert server_of("\\\\fs01\\vms\\a.vhdx") == "fs01"
    with pytest.raises(ObjectNotFound):
        server_of("\\\\fs01")


def test_share_access_allows_hyperv_to_keep_the_file_open():
    assert set(SHARE_ACCESS) == {"r", "w", "d"}


def test_smb_connection_refused_is_transport_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    credentials = SmbCredentials(username="backup", password="pw", port=port, connection_timeout=5)
    with pytest.raises(TransportError, match=r"\\\\127.0.0.1\\C\$\\a.vhdx: cannot connect"):
        SmbFileSource("\\\\127.0.0.1\\C$\\a.vhdx", credentials)


def test_smb_error_mapping():
    import errno

    from smbprotocol.exceptions import SMBAuthenticationError

    assert isinstance(map_smb_error(SMBAuthenticationError("bad"), "\\\\h\\s\\f"), AuthenticationError)
    assert isinstance(map_smb_error(OSError(errno.ENOENT, "x"), "\\\\h\\s\\f"), ObjectNotFound)
    assert isinstance(map_smb_error(OSError(errno.EACCES, "x"), "\\\\h\\s\\f"), AuthenticationError)
    assert type(map_smb_error(RuntimeError("boom"), "\\\\h\\s\\f")) is TransportError
