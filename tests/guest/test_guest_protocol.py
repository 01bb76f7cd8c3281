"""The hv_vss wire format, byte for byte (include/uapi/linux/hyperv.h, packed, little-endian)."""

from __future__ import annotations

import pytest

from hvbackup.guest import protocol as p


def test_registration_is_op_129_then_zeros() -> None:
    assert p.encode_register() == bytes([129]) + bytes(11)


def test_handshake_reply_is_four_byte_version_word() -> None:
    assert p.encode_handshake_reply() == b"\x81\x00\x00\x00"
    assert p.decode_handshake_reply(b"\x81\x00\x00\x00") == 129
    with pytest.raises(p.ProtocolError):
        p.decode_handshake_reply(bytes(12))


@pytest.mark.parametrize("op", [0, 1, 2, 3, 4, 5, 6, 7])
def test_request_carries_only_the_operation_byte(op: int) -> None:
    msg = p.encode_operation(op)
    assert len(msg) == 12 and msg[0] == op and msg[1:] == bytes(11)
    assert p.decode_operation(msg) == op


def test_reply_overwrites_first_four_bytes_and_echoes_the_rest() -> None:
    request = bytes([5]) + bytes(7) + b"\x05\x00\x00\x00"
    assert p.encode_reply(request, p.HV_E_FAIL) == b"\x05\x40\x00\x80" + bytes(4) + b"\x05\x00\x00\x00"
    assert p.encode_reply(p.encode_operation(2), p.HV_S_OK) == bytes(12)
    assert p.decode_reply(p.encode_reply(request, p.HV_E_FAIL)) == 0x80004005


def test_wrong_length_is_a_protocol_error() -> None:
    with pytest.raises(p.ProtocolError):
        p.decode_operation(bytes(11))
    with pytest.raises(p.ProtocolError):
        p.encode_reply(bytes(13), 0)


def test_report_round_trips_and_rejects_damage() -> None:
    report = {"consistency": "application", "frozen_seconds": 0.25, "hooks": [{"name": "10-db"}]}
    data = p.encode_report(report)
    assert data[:4] == b"HVBR" and int.from_bytes(data[8:12], "little") == len(data) - 12
    assert p.decode_report(data) == report
    with pytest.raises(p.ProtocolError):
        p.decode_report(data[:-1])
    with pytest.raises(p.ProtocolError):
        p.decode_report(b"XXXX" + data[4:])


def test_oversized_report_drops_hook_output_to_fit_one_packet() -> None:
    from hvbackup.guest.vssd import _report_packet

    hooks = [{"name": f"h{i}", "phase": "freeze", "ok": True, "stdout": "x" * 4096, "stderr": ""} for i in range(40)]
    data = _report_packet({"consistency": "application", "hooks": hooks, "log": [str(i) for i in range(100)]})
    assert len(data) <= p.MAX_REPORT_SIZE
    report = p.decode_report(data)
    assert report["truncated"] and report["hooks"][0] == {"name": "h0", "phase": "freeze", "ok": True}
    assert report["log"] == [str(i) for i in range(80, 100)]
