"""The hv_vss wire format: the 12-byte `struct hv_vss_msg` of include/uapi/linux/hyperv.h.

The kernel (drivers/hv/hv_snapshot.c) sends a request with only byte 0 (the operation) set; the
daemon answers by writing the 32-bit status over bytes 0-3 and sending the 12 bytes back.
Registration is a 12-byte message with op VSS_OP_REGISTER1; the kernel answers with a 4-byte
word equal to 129. See docs/GUEST.md §1.

The lab channel (a SEQPACKET socket) uses the same messages, plus one report message the agent
sends after answering THAW (encode_report/decode_report).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from hvbackup.errors import HvBackupError

VSS_OP_CREATE = 0
VSS_OP_DELETE = 1
VSS_OP_HOT_BACKUP = 2
VSS_OP_GET_DM_INFO = 3
VSS_OP_BU_COMPLETE = 4
VSS_OP_FREEZE = 5
VSS_OP_THAW = 6
VSS_OP_AUTO_RECOVER = 7
VSS_OP_REGISTER = 128
VSS_OP_REGISTER1 = 129

OP_NAMES = {
    VSS_OP_CREATE: "CREATE",
    VSS_OP_DELETE: "DELETE",
    VSS_OP_HOT_BACKUP: "HOT_BACKUP",
    VSS_OP_GET_DM_INFO: "GET_DM_INFO",
    VSS_OP_BU_COMPLETE: "BU_COMPLETE",
    VSS_OP_FREEZE: "FREEZE",
    VSS_OP_THAW: "THAW",
    VSS_OP_AUTO_RECOVER: "AUTO_RECOVER",
    VSS_OP_REGISTER: "REGISTER",
    VSS_OP_REGISTER1: "REGISTER1",
}

HV_S_OK = 0x00000000
HV_E_FAIL = 0x80004005

MSG_SIZE = 12
HANDSHAKE_SIZE = 4
_MSG = struct.Struct("<B7xI")  # operation, reserved[7], flags
_STATUS = struct.Struct("<I")

REPORT_MAGIC = b"HVBR"
REPORT_VERSION = 1
MAX_REPORT_SIZE = 64 * 1024  # well under a SEQPACKET socket's default send buffer
_REPORT_HEADER = struct.Struct("<4sHHI")  # magic, version, reserved, JSON length


class ProtocolError(HvBackupError):
    """A message that does not follow the hv_vss format."""


def op_name(op: int) -> str:
    return OP_NAMES.get(op, f"UNKNOWN({op})")


def encode_operation(op: int, flags: int = 0) -> bytes:
    """A kernel-to-daemon request (or a daemon registration) as the char device carries it."""
    return _MSG.pack(op, flags)


def encode_register() -> bytes:
    return encode_operation(VSS_OP_REGISTER1)


def encode_handshake_reply(version: int = VSS_OP_REGISTER1) -> bytes:
    """What the kernel answers to REGISTER1: a u32 that equals 129."""
    return _STATUS.pack(version)


def decode_handshake_reply(data: bytes) -> int:
    if len(data) != HANDSHAKE_SIZE:
        raise ProtocolError(f"invalid version negotiation: expected 4 bytes, got {len(data)}")
    return _STATUS.unpack(data)[0]


def decode_operation(data: bytes) -> int:
    """The operation of a 12-byte request."""
    if len(data) != MSG_SIZE:
        raise ProtocolError(f"hv_vss message of {len(data)} bytes, expected {MSG_SIZE}")
    return data[0]


def encode_reply(request: bytes, status: int) -> bytes:
    """The reply the stock daemon writes: the status over bytes 0-3, bytes 4-11 echoed."""
    if len(request) != MSG_SIZE:
        raise ProtocolError(f"hv_vss message of {len(request)} bytes, expected {MSG_SIZE}")
    return _STATUS.pack(status) + request[4:]


def decode_reply(data: bytes) -> int:
    """The status word of a daemon reply."""
    if len(data) != MSG_SIZE:
        raise ProtocolError(f"hv_vss reply of {len(data)} bytes, expected {MSG_SIZE}")
    return _STATUS.unpack_from(data)[0]


def encode_report(report: dict[str, Any]) -> bytes:
    """The lab channel's report after THAW: 12-byte header then UTF-8 JSON."""
    body = json.dumps(report, separators=(",", ":"), default=str).encode()
    return _REPORT_HEADER.pack(REPORT_MAGIC, REPORT_VERSION, 0, len(body)) + body


def is_report(data: bytes) -> bool:
    return data[:4] == REPORT_MAGIC


def decode_report(data: bytes) -> dict[str, Any]:
    """Parse a report message sent by `hvbackup-guest vssd --socket` after THAW."""
    if len(data) < _REPORT_HEADER.size:
        raise ProtocolError(f"report of {len(data)} bytes is shorter than its header")
    magic, version, _reserved, length = _REPORT_HEADER.unpack_from(data)
    if magic != REPORT_MAGIC:
        raise ProtocolError(f"not a report message (magic {magic!r})")
    if version != REPORT_VERSION:
        raise ProtocolError(f"report version {version} is not supported")
    body = data[_REPORT_HEADER.size :]
    if len(body) != length:
        raise ProtocolError(f"report body is {len(body)} bytes, header says {length}")
    return json.loads(body.decode())
