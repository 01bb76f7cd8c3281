"""The host side of a lab VM's backup integration service: asking the guest to freeze.

- "agent": the lab plays the kernel's hv_utils VSS channel (drivers/hv/hv_snapshot.c, docs/GUEST.md
  §1-2) on a Unix SOCK_SEQPACKET socket and runs the real guest agent against it,
  `hvbackup-guest vssd --socket PATH --no-freeze --kvp-dir guest/kvp` (docs/GUEST.md "The lab
  channel"): handshake, HOT_BACKUP, FREEZE, THAW. The VM's filesystems are not mounted here, so
  the agent freezes no filesystem; its hooks run for real, and the lab pauses the workload between
  FREEZE and THAW as a frozen filesystem would. The agent publishes its freeze report into the
  VM's KVP pool (guest/kvp, the VM's /var/lib/hyperv), where the host reads it as on a real host
  (lab/operations/guest.py); the lab takes no report from the socket.
- "stock": answers as the stock hv_vss_daemon does (it always freezes, no hooks, publishes nothing):
  filesystem-consistent.
- "none": no Integration Services in the guest: the freeze cannot happen.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hvbackup.guest import protocol as p
from hvbackup.lab.folder import VmFolder

ACCEPT_TIMEOUT = 30.0
FREEZE_TIMEOUT = 120.0  # hooks run before the answer
THAW_TIMEOUT = 60.0
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux


def kvp_dir(folder: VmFolder) -> Path:
    """The lab VM's /var/lib/hyperv: the KVP pool files of its guest (docs/GUEST.md §15)."""
    return folder.guest_dir / "kvp"


class GuestUnavailable(Exception):
    """The guest did not answer the channel the way the kernel expects."""


class NoGuest:
    """No VSS daemon in the guest: FREEZE is never answered OK."""

    def __init__(self, detail: str = "the guest was not asked") -> None:
        self.detail = detail
        self.report: dict[str, Any] | None = None

    def __enter__(self) -> NoGuest:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def freeze(self) -> bool:
        return False

    def thaw(self) -> None:
        pass

    def finish(self) -> None:
        pass


class StockGuest(NoGuest):
    """The stock daemon: freezes every filesystem it may, runs nothing else (docs/ASSESS.md §4)."""

    def __init__(self, mounts: list[str]) -> None:
        super().__init__("")
        self.mounts = mounts

    def freeze(self) -> bool:
        self.started = time.monotonic()
        return True

    def thaw(self) -> None:
        self.frozen_seconds = round(time.monotonic() - self.started, 4)  # the stock daemon reports nothing


class AgentGuest:
    """The real agent on a SEQPACKET socket; the lab is the kernel side."""

    def __init__(self, folder: VmFolder) -> None:
        self.folder = folder
        self.report: dict[str, Any] | None = None
        self.detail = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._agent: subprocess.Popen[bytes] | None = None
        self._path: Path | None = None

    # -- channel -----------------------------------------------------------------------------
    def __enter__(self) -> AgentGuest:
        path = self._socket_path()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._path = path
        self._agent = self._spawn(path)
        try:
            self._conn = self._accept()
            self._handshake()
        except (OSError, GuestUnavailable, p.ProtocolError) as exc:
            self.detail = f"the guest agent did not register on the VSS channel ({exc})"
            self._conn = None
        return self

    def _accept(self) -> socket.socket:
        """The agent's connection; fails early if the agent exits before connecting."""
        assert self._listener is not None and self._agent is not None
        self._listener.settimeout(0.2)
        deadline = time.monotonic() + ACCEPT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return self._listener.accept()[0]
            except TimeoutError:
                if self._agent.poll() is not None:
                    raise GuestUnavailable(f"the agent exited with status {self._agent.returncode}") from None
        raise GuestUnavailable(f"no connection within {ACCEPT_TIMEOUT:.0f} s")

    def __exit__(self, *exc: object) -> None:
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        if self._agent is not None:
            try:
                self._agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._agent.kill()
                self._agent.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _socket_path(self) -> Path:
        path = self.folder.guest_dir / "vss.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            self._tmp = tempfile.TemporaryDirectory(prefix="hvlab-")
            path = Path(self._tmp.name) / "vss.sock"
        path.unlink(missing_ok=True)
        return path

    def _spawn(self, path: Path) -> subprocess.Popen[bytes]:
        guest = self.folder.guest_dir
        argv = [
            sys.executable,
            "-c",
            "from hvbackup.cli.guest_main import main; main()",
            "vssd",
            "--socket", str(path),
            "--no-freeze",
            "--hooks-dir", str(guest / "hooks.d"),
            "--config", str(guest / "guest.toml"),
            "--state-dir", str(guest / "run"),
            "--kvp-dir", str(kvp_dir(self.folder)),
            "--no-readiness",  # the sample published this guest's readiness (lab/sample.py)
            "--json",
        ]  # fmt: skip
        log = open(guest / "vssd.log", "ab")  # noqa: SIM115 - handed to the child
        with log:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def _receive(self, timeout: float) -> bytes:
        assert self._conn is not None
        self._conn.settimeout(timeout)
        try:
            data = self._conn.recv(1 << 20)
        except TimeoutError:
            raise GuestUnavailable(f"no answer within {timeout:.0f} s") from None
        if not data:
            raise GuestUnavailable("the agent closed the channel")
        return data

    def _handshake(self) -> None:
        message = self._receive(ACCEPT_TIMEOUT)
        if p.decode_operation(message) != p.VSS_OP_REGISTER1:
            raise GuestUnavailable(f"expected REGISTER1, got {p.op_name(message[0])}")
        assert self._conn is not None
        self._conn.send(p.encode_handshake_reply())

    def _request(self, op: int, timeout: float) -> int:
        assert self._conn is not None
        self._conn.send(p.encode_operation(op))
        return p.decode_reply(self._receive(timeout))

    # -- the backup conversation -------------------------------------------------------------
    def freeze(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._request(p.VSS_OP_HOT_BACKUP, THAW_TIMEOUT)
            status = self._request(p.VSS_OP_FREEZE, FREEZE_TIMEOUT)
        except (OSError, GuestUnavailable, p.ProtocolError) as exc:
            self.detail = f"the guest agent did not answer FREEZE ({exc})"
            return False
        if status != p.HV_S_OK:
            self.detail = f"the guest agent answered FREEZE with 0x{status:08X}"
            return False
        return True

    def thaw(self) -> None:
        if self._conn is None:
            return
        try:
            status = self._request(p.VSS_OP_THAW, THAW_TIMEOUT)
        except (OSError, GuestUnavailable, p.ProtocolError) as exc:
            self.detail = f"the guest agent did not answer THAW ({exc})"
            return
        if status != p.HV_S_OK:
            self.detail = f"the guest agent answered THAW with 0x{status:08X}"

    def finish(self) -> None:
        """After THAW: the agent runs its thaw hooks and publishes its report in the KVP pool; a real
        host does not wait for that, the engine's guest_report polls for it."""
