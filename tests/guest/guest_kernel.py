"""The kernel's side of /dev/vmbus/hv_vss, played over a SOCK_SEQPACKET socket.

Follows drivers/hv/hv_snapshot.c (docs/GUEST.md §1-2): expects the 12-byte REGISTER1,
answers the 4-byte version word 129, sends 12-byte requests with only the operation byte set and
reads 12-byte replies. After THAW (or a failed FREEZE) the agent sends its report (lab extension).
"""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

from hvbackup.guest import protocol as p


class FakeKernel:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(30)
        self.conn: socket.socket | None = None

    def accept(self, timeout: float = 30) -> bytes:
        """Accept the daemon, check its registration, answer the handshake; returns what it sent."""
        self.conn, _ = self.listener.accept()
        self.conn.settimeout(timeout)
        registration = self.conn.recv(4096)
        self.conn.send(struct.pack("<I", p.VSS_OP_REGISTER1))
        return registration

    def request(self, op: int, timeout: float = 60) -> bytes:
        """Send one request and return the raw reply."""
        assert self.conn is not None
        self.conn.settimeout(timeout)
        self.conn.send(p.encode_operation(op))
        return self.conn.recv(4096)

    def report(self, timeout: float = 60) -> dict[str, Any]:
        assert self.conn is not None
        self.conn.settimeout(timeout)
        return p.decode_report(self.conn.recv(1 << 20))

    def send_raw(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.send(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def shutdown(self) -> None:
        self.close()
        self.listener.close()


def start_vssd(
    cli: list[str], sock: Path, state_dir: Path, hooks_dir: Path, *extra: str | Path, max_seconds: float = 30
) -> subprocess.Popen[str]:
    import os

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [
        *cli,
        "vssd",
        "--socket",
        str(sock),
        "--state-dir",
        str(state_dir),
        "--hooks-dir",
        str(hooks_dir),
        "--max-seconds",
        str(max_seconds),
        "--kvp-dir",
        str(state_dir.parent / "kvp"),  # never this machine's /var/lib/hyperv
        *map(str, extra),
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
