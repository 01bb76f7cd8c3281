"""Debian's samba (smbd) on the loopback, started and stopped by the tests that need a real SMB server.

`run_samba(root)` serves `root/share` as the administrative share `C$` of 127.0.0.1 to the user
root (password PASSWORD), and yields the share folder, the port and the smbd process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

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


@dataclass
class Samba:
    share: Path
    port: int
    process: subprocess.Popen

    def client_connections(self) -> int:
        """How many TCP connections of this process are open to the server."""
        return sum(
            1
            for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == self.port and c.status == psutil.CONN_ESTABLISHED
        )

    def drop_connections(self) -> int:
        """Ends every smbd process serving a client (smbd forks one per connection), as a reset would."""
        children = psutil.Process(self.process.pid).children()
        for child in children:
            child.kill()
        psutil.wait_procs(children, timeout=10)
        return len(children)


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


@contextmanager
def run_samba(root: Path) -> Iterator[Samba]:
    smbd = shutil.which("smbd") or ("/usr/sbin/smbd" if os.path.exists("/usr/sbin/smbd") else None)
    if smbd is None:
        pytest.skip("samba (smbd) is not installed: scripts/debian-packages.txt installs it")
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
        yield Samba(root / "share", port, process)
    finally:
        import smbclient

        smbclient.reset_connection_cache()
        process.terminate()
        process.wait(timeout=20)
