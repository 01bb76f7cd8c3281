"""SmbDiskWriter against a real SMB server (Debian's samba) on the loopback: what a whole-VM
restore onto a remote host relies on. A file appears under its name only when complete, an
existing file is never replaced, and a failed upload leaves nothing behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hvbackup.hyperv.errors import AuthenticationError
from hvbackup.hyperv.smb import SmbCredentials
from hvbackup.hyperv.smb_writer import SmbDiskWriter

from .test_smb_server import PASSWORD, smb_server  # noqa: F401 - the samba fixture

pytestmark = [pytest.mark.root, pytest.mark.slow]
MIB = 1024 * 1024


@pytest.fixture
def writer(smb_server):  # noqa: F811
    share, port = smb_server
    return share, SmbDiskWriter("127.0.0.1", SmbCredentials(username="root", password=PASSWORD, port=port))


def test_a_folder_is_made_and_a_file_uploaded_under_its_name_only_when_complete(writer, tmp_path: Path) -> None:
    share, smb = writer
    local = tmp_path / "disk.vhdx"
    data = os.urandom(20 * MIB + 4097)  # not a multiple of the upload block nor of a sector
    local.write_bytes(data)
    smb.make_folder("C:\\VMs\\web-01-restored")
    assert (share / "VMs" / "web-01-restored").is_dir()
    assert not smb.exists("C:\\VMs\\web-01-restored\\disk.vhdx")
    smb.upload(local, "C:\\VMs\\web-01-restored\\disk.vhdx")
    assert (share / "VMs" / "web-01-restored" / "disk.vhdx").read_bytes() == data
    assert smb.exists("C:\\VMs\\web-01-restored\\disk.vhdx")
    assert sorted(p.name for p in (share / "VMs" / "web-01-restored").iterdir()) == ["disk.vhdx"]


def test_an_existing_file_is_never_replaced(writer, tmp_path: Path) -> None:
    share, smb = writer
    (share / "VMs" / "keep.vhdx").write_bytes(b"the administrator's disk")
    local = tmp_path / "new.vhdx"
    local.write_bytes(b"x" * MIB)
    with pytest.raises(FileExistsError):
        smb.upload(local, "C:\\VMs\\keep.vhdx")
    assert (share / "VMs" / "keep.vhdx").read_bytes() == b"the administrator's disk"
    assert [p.name for p in (share / "VMs").iterdir() if "partial" in p.name] == []


def test_a_failed_upload_leaves_no_partial_file(writer) -> None:
    share, smb = writer
    unreadable = Path("/proc/self/mem")  # opens, then its first read fails with EIO: a failing local disk
    with pytest.raises(OSError, match="Input/output error"):
        smb.upload(unreadable, "C:\\VMs\\broken.vhdx")
    assert not smb.exists("C:\\VMs\\broken.vhdx")
    assert [p.name for p in (share / "VMs").iterdir() if "broken" in p.name] == []


def test_a_removed_file_is_gone_and_removing_it_again_is_no_error(writer, tmp_path: Path) -> None:
    share, smb = writer
    (share / "VMs" / "gone.vhdx").write_bytes(b"1")
    smb.remove("C:\\VMs\\gone.vhdx")
    smb.remove("C:\\VMs\\gone.vhdx")
    assert not (share / "VMs" / "gone.vhdx").exists()


def test_a_wrong_password_is_an_authentication_error(smb_server) -> None:  # noqa: F811
    import smbclient

    _, port = smb_server
    smbclient.reset_connection_cache()
    wrong = SmbDiskWriter("127.0.0.1", SmbCredentials(username="root", password="wrong", port=port))
    with pytest.raises(AuthenticationError):
        wrong.exists("C:\\VMs\\x.vhdx")
    smbclient.reset_connection_cache()


def test_upload_speed(writer, tmp_path: Path, capsys) -> None:
    """The figure docs/HYPERV.md §14 quotes: one sequential upload of 256 MiB to samba on loopback."""
    _, smb = writer
    local = tmp_path / "big.vhdx"
    with open(local, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(MIB))
    started = time.monotonic()
    smb.upload(local, "C:\\VMs\\big.vhdx")
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nSMB upload: 256 MiB in {elapsed:.2f} s = {256 / elapsed:.0f} MiB/s")
    smb.remove("C:\\VMs\\big.vhdx")
