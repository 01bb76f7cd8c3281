"""SmbFileSource against a real SMB server (Debian's samba) on the loopback.

Hyper-V keeps a running VM's disk files open for writing. The test holds such a handle open
(read+write, sharing read) and shows that our source still opens and reads the file while
smbclient's default (exclusive) open is refused with a sharing violation.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hvbackup.hyperv.errors import AuthenticationError, ObjectNotFound, TransportError
from hvbackup.hyperv.smb import SmbCredentials, SmbDiskOpener

pytestmark = [pytest.mark.root, pytest.mark.slow]

PASSWORD = "hvbackup-test-pw"
CONF = """\
[global]
  workgroup = HVTEST
  server role = standalone server
  smb ports = {port}
  interfaces = lo
  bind interfaces only = yes
  private dir = {d}/private
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  pid directory = {d}/pid
  ncalrpc dir = {d}/ncalrpc
  log file = {d}/log.smbd
  passdb backend = tdbsam:{d}/private/passdb.tdb
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  server min protocol = SMB2_10
  map to guest = never
  kernel oplocks = no

[C$]
  path = {d}/share
  read only = no
  valid users = root
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smbd exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("smbd did not start listening")


@pytest.fixture(scope="module")
def smb_server(tmp_path_factory):
    smbd = shutil.which("smbd") or ("/usr/sbin/smbd" if os.path.exists("/usr/sbin/smbd") else None)
    if smbd is None:
        pytest.skip("samba (smbd) is not installed: scripts/debian-packages.txt installs it")
    root = tmp_path_factory.mktemp("smb")
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "share/VMs"):
        (root / sub).mkdir(parents=True)
    port = _free_port()
    conf = root / "smb.conf"
    conf.write_text(CONF.format(port=port, d=root))
    subprocess.run(
        ["pdbedit", "-s", str(conf), "-a", "-u", "root", "-t"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    # In the foreground smbd makes its own session (setsid), so stopping it cannot reach pytest.
    process = subprocess.Popen(
        [smbd, "--foreground", "-s", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, time.monotonic() + 30)
        yield root / "share", port
    finally:
        import smbclient

        smbclient.reset_connection_cache()
        process.terminate()
        process.wait(timeout=20)


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
