"""SmbFileSource against a real SMB server (Debian's samba) on the loopback.

Hyper-V keeps a running VM's disk files open for writing. The test holds such a handle open
(read+write, sharing read) and shows that our source still opens and reads the file while
smbclient's default (exclusive) open is refused with a sharing violation.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from hvbackup.hyperv.errors import AuthenticationError, ObjectNotFound, TransportError
from hvbackup.hyperv.smb import SmbCredentials, SmbDiskOpener

from .samba import PASSWORD, run_samba

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def smb_server(tmp_path_factory):
    with run_samba(tmp_path_factory.mktemp("smb")) as samba:
        yield samba.share, samba.port


@pytest.fixture
def disk(smb_server):
    share, port = smb_server
    data = os.urandom(5 * 1024 * 1024 + 123)
    (share / "VMs" / "web01.vhdx").write_bytes(data)
    opener = SmbDiskOpener("127.0.0.1", SmbCredentials(username="root", password=PASSWORD, port=port))
    return data, opener, port


def test_reads_a_file_that_another_handle_holds_open_for_writing(disk):
    import smbclient

    data, opener, port = disk
    unc = "\\\\127.0.0.1\\C$\\VMs\\web01.vhdx"
    login = {"port": port, "username": "root", "password": PASSWORD}
    with smbclient.open_file(unc, mode="r+b", buffering=0, share_access="r", **login) as vm_worker:
        with pytest.raises(OSError, match="0xc0000043"):  # smbclient's default open is exclusive
            smbclient.open_file(unc, mode="rb", **login).close()
        with opener("C:\\VMs\\web01.vhdx") as source:
            assert source.size == len(data) and source.name == unc
            spans = [(o, 1024 * 1024) for o in range(0, len(data), 300_000)]
            with ThreadPoolExecutor(4) as pool:
                chunks = list(pool.map(lambda span: source.pread(*span), spans))
            assert all(chunk == data[o : o + n] for chunk, (o, n) in zip(chunks, spans, strict=False))
            # What the holder writes is what the next read returns: nothing is served from a buffer.
            vm_worker.seek(4096)
            vm_worker.write(b"\xaa" * 512)
            assert source.pread(4096, 512) == b"\xaa" * 512
        with pytest.raises(TransportError):  # every thread's handle was closed with the source
            source.pread(0, 512)


def test_missing_file_is_object_not_found(disk):
    _, opener, _ = disk
    with pytest.raises(ObjectNotFound):
        opener("C:\\VMs\\missing.vhdx")


def test_wrong_password_is_authentication_error(disk):
    import smbclient

    _, _, port = disk
    smbclient.reset_connection_cache()
    wrong = SmbDiskOpener("127.0.0.1", SmbCredentials(username="root", password="wrong", port=port))
    with pytest.raises(AuthenticationError):
        wrong("C:\\VMs\\web01.vhdx")
    smbclient.reset_connection_cache()
