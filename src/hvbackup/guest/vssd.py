"""The VSS daemon loop: hv_vss_daemon's protocol on /dev/vmbus/hv_vss (or a lab SEQPACKET socket).

Start-up thaws anything a previous run left frozen (its state file), then registers with
REGISTER1 and expects the 4-byte answer 129. Each request is 12 bytes; HOT_BACKUP, FREEZE and THAW
get work, every other operation gets HV_S_OK as the stock daemon answers. THAW is answered right
after FITHAW; thaw hooks run after the answer. On the socket channel a report message follows the
THAW reply (protocol.encode_report). A failed write (the kernel timed out or faked a THAW for
hibernation) thaws and re-registers. See docs/GUEST.md §2, §3.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hvbackup import kvpreport
from hvbackup.errors import HvBackupError
from hvbackup.guest import kvp
from hvbackup.guest import protocol as p
from hvbackup.guest.mounts import check_mount_points
from hvbackup.guest.state import StateDir, pid_alive
from hvbackup.guest.transaction import FreezeOptions, FreezeTransaction, MemoryLog, recover

DEFAULT_DEVICE = Path("/dev/vmbus/hv_vss")


class ChannelError(HvBackupError):
    """The VSS device or socket cannot be used."""


class ChannelGone(Exception):
    """The other side went away (device reset, socket closed)."""


class Channel:
    """A message channel: the char device, or a connected SOCK_SEQPACKET socket (same messages)."""

    def __init__(self, fd: int, kind: str, keep: object = None) -> None:
        self.fd, self.kind, self._keep = fd, kind, keep

    @classmethod
    def open_device(cls, path: Path) -> Channel:
        try:
            return cls(os.open(path, os.O_RDWR | os.O_CLOEXEC), "device")
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise ChannelError(f"{path} is busy: another VSS daemon (hv_vss_daemon/hypervvssd) holds it") from None
            if exc.errno == errno.ENOENT:
                raise ChannelError(
                    f"{path} does not exist: hv_utils is not loaded or the host does not offer "
                    "the Backup integration service"
                ) from None
            raise ChannelError(f"cannot open {path}: {exc.strerror}") from None

    @classmethod
    def connect_socket(cls, path: Path) -> Channel:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            raise ChannelError(f"cannot connect to {path}: {exc.strerror}") from None
        return cls(sock.fileno(), "socket", sock)

    def receive(self) -> bytes:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            events = poller.poll()
            if not events:
                continue
            mask = events[0][1]
            if mask & select.POLLIN:
                break
            if mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                raise ChannelGone()
        try:
            data = os.read(self.fd, 65536)
        except OSError as exc:
            raise ChannelGone() from exc
        if not data:
            raise ChannelGone()
        return data

    def send(self, data: bytes) -> None:
        try:
            os.write(self.fd, data)
        except OSError as exc:
            raise ChannelGone() from exc

    def close(self) -> None:
        if self._keep is not None:
            self._keep.close()  # type: ignore[attr-defined]
        else:
            os.close(self.fd)


@dataclass
class DaemonOptions:
    freeze: FreezeOptions
    device: Path = DEFAULT_DEVICE
    socket: Path | None = None
    kvp_dir: Path | None = None  # the KVP pool folder (the CLI: /var/lib/hyperv); None: publish nothing
    publish_readiness: bool = True


class VssDaemon:
    def __init__(self, options: DaemonOptions, say: Callable[[str], None] = lambda _m: None) -> None:
        self.opts = options
        self.say = say
        self.txn: FreezeTransaction | None = None
        self.log = MemoryLog()
        self.pending_report: dict | None = None
        self.reports: list[dict] = []
        self.request: str | None = None  # the host's HvBackupRequest token read at FREEZE

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        """Serve until the socket closes (lab) or forever (device, re-registering after resets)."""
        check_mount_points(self.opts.freeze.only)
        self._recover()
        self._publish_readiness()
        while True:
            channel = self._connect()
            try:
                self._register(channel)
                self._serve(channel)
            except ChannelGone:
                self._abort_freeze()
                if self.opts.socket is not None:
                    return
                time.sleep(1)
            finally:
                channel.close()

    def _recover(self) -> None:
        state_dir: StateDir = self.opts.freeze.state_dir
        state = state_dir.load()
        if state is not None and (state.by == "vssd" or not pid_alive(state.pid)):
            report = recover(state_dir)
            self.say(f"thawed what a previous run left frozen: {report}")

    def _publish_readiness(self) -> None:
        if self.opts.kvp_dir is None or not self.opts.publish_readiness:
            return
        from hvbackup.guest.readiness import run_checks

        try:
            kvp.publish(self.opts.kvp_dir, kvpreport.READINESS, run_checks(Path("/")))
        except (HvBackupError, ValueError) as exc:
            self.say(f"readiness not published for the host: {exc}")

    def _connect(self) -> Channel:
        if self.opts.socket is not None:
            return Channel.connect_socket(self.opts.socket)
        return Channel.open_device(self.opts.device)

    def _register(self, channel: Channel) -> None:
        channel.send(p.encode_register())
        version = p.decode_handshake_reply(channel.receive())
        if version != p.VSS_OP_REGISTER1:
            raise ChannelError(f"invalid version negotiation: kernel answered {version}")
        self.say(f"registered on {channel.kind}; kernel module version {version}")

    def _serve(self, channel: Channel) -> None:
        while True:
            request = channel.receive()
            if len(request) != p.MSG_SIZE:
                self.say(f"ignored a message of {len(request)} bytes")
                raise ChannelGone()
            op = p.decode_operation(request)
            status = self.handle(op)
            channel.send(p.encode_reply(request, status))
            if op == p.VSS_OP_THAW:
                self._finish()  # thaw hooks and quiescer release run after the host has its answer
            if self.pending_report is not None:
                if channel.kind == "socket":
                    channel.send(_report_packet(self.pending_report))
                self.pending_report = None

    # -- operations --------------------------------------------------------------------------
    def handle(self, op: int) -> int:
        if op == p.VSS_OP_HOT_BACKUP:
            return self._hot_backup()
        if op == p.VSS_OP_FREEZE:
            return self._freeze()
        if op == p.VSS_OP_THAW:
            return self._thaw()
        self.log(f"op={p.op_name(op)}: answered OK")
        return p.HV_S_OK

    def _hot_backup(self) -> int:
        self.log("op=HOT_BACKUP")
        return p.HV_S_OK

    def _freeze(self) -> int:
        if self.txn is not None:  # a FREEZE without THAW in between: thaw the old one first
            self._abort_freeze()
        self.request = self._host_request()
        txn = FreezeTransaction(self.opts.freeze)
        try:
            frozen = txn.begin()
        except HvBackupError as exc:
            txn.error = str(exc)
            frozen = False
        self.txn = txn
        if not frozen:
            self._finish()
            return p.HV_E_FAIL
        return p.HV_S_OK

    def _thaw(self) -> int:
        if self.txn is None:
            self.log("op=THAW with nothing frozen")
            return p.HV_S_OK
        return p.HV_S_OK if self.txn.thaw() else p.HV_E_FAIL

    def _finish(self) -> dict | None:
        if self.txn is None:
            return None
        report = self.txn.finish()
        report["host_request"] = self.request
        self.say(f"backup {report['backup_id']}: {report['consistency']}, frozen {report['frozen_seconds']} s")
        self._publish_freeze(report)
        self.txn = None
        self.pending_report = report
        self.reports.append(report)
        return report

    def _host_request(self) -> str | None:
        """The token the host announced for this checkpoint (pool 0), read before anything freezes."""
        if self.opts.kvp_dir is None:
            return None
        try:
            return kvp.host_item(self.opts.kvp_dir, kvpreport.REQUEST_KEY)
        except HvBackupError as exc:
            self.log(f"no host request token: {exc}")
            return None

    def _publish_freeze(self, report: dict) -> None:
        """After the thaw hooks: the report for the host, tied to its checkpoint by the token."""
        if self.opts.kvp_dir is None:
            return
        try:
            kvp.publish(self.opts.kvp_dir, kvpreport.FREEZE, _fit_items(report), self.request)
        except (HvBackupError, ValueError) as exc:
            self.say(f"freeze report not published for the host: {exc}")

    def _abort_freeze(self) -> None:
        if self.txn is not None:
            self.txn.thaw()
            self._finish()


def _shortened(report: dict) -> dict:
    """The report without hook output and with the last 20 log lines only."""
    hooks = [{k: v for k, v in h.items() if k not in ("stdout", "stderr")} for h in report.get("hooks", [])]
    return {**report, "hooks": hooks, "log": report.get("log", [])[-20:], "truncated": True}


def _fit_items(report: dict) -> dict:
    """The report, shortened if it would need more KVP items than a publication may have."""
    limit = kvpreport.PART_CHARS * kvpreport.MAX_PARTS
    return report if len(kvpreport.encode(report)) <= limit else _shortened(report)


def _report_packet(report: dict) -> bytes:
    """The report message; hook output and old log lines are dropped if it would not fit one packet."""
    data = p.encode_report(report)
    if len(data) <= p.MAX_REPORT_SIZE:
        return data
    return p.encode_report(_shortened(report))
