"""A report as Hyper-V Data Exchange (KVP) items, and back: split, reassemble, validate.

One report of kind K (e.g. "Readiness", "Freeze") is published as the items `HvBackup.K.0` ...
`HvBackup.K.<n-1>` (the report's compact ASCII JSON cut into parts) and the header `HvBackup.K`:
`{"v": 1, "serial": S, "parts": n, "size": bytes, "sha256": hex, "token": T}`. Every part starts
with `S:` so that parts of two publications can never be mixed unnoticed; the header names the
checksum of the whole. The host reads the items one index at a time while the guest may rewrite
them (docs/GUEST.md §15), so a reader can see a torn set: a missing part, a part of another
serial, a bad checksum. `reassemble` raises TornReport for each of those; a caller never counts
such a report. Each value stays below the 1022 UTF-16 units the kernel hands to the host
(docs/HYPERV.md §13), so ASCII only.

A leaf: it imports nothing of hvbackup (guest/ and hyperv/ share it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VERSION = 1
PREFIX = "HvBackup"
READINESS = "Readiness"
FREEZE = "Freeze"
REQUEST_KEY = "HvBackupRequest"  # host -> guest: the token of the checkpoint being taken
PART_CHARS = 960  # + "serial:" stays below the kernel's 1022 UTF-16 units per value
MAX_PARTS = 64


class TornReport(ValueError):
    """The items do not make one complete, intact report."""


@dataclass(frozen=True)
class Published:
    report: dict[str, Any]
    token: str | None
    serial: str


def header_key(kind: str) -> str:
    return f"{PREFIX}.{kind}"


def part_key(kind: str, index: int) -> str:
    return f"{PREFIX}.{kind}.{index}"


def encode(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=True, separators=(",", ":"), sort_keys=True, default=str)


def split(kind: str, report: dict[str, Any], token: str | None = None, serial: str | None = None) -> dict[str, str]:
    """The items of one publication, parts first and the header last. ValueError if too large."""
    text = encode(report)
    serial = serial or uuid.uuid4().hex[:12]
    parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    if len(parts) > MAX_PARTS:
        raise ValueError(f"a {kind} report of {len(text)} bytes needs {len(parts)} KVP items, at most {MAX_PARTS}")
    items = {part_key(kind, i): f"{serial}:{part}" for i, part in enumerate(parts)}
    header = {
        "v": VERSION,
        "serial": serial,
        "parts": len(parts),
        "size": len(text),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "token": token,
    }
    items[header_key(kind)] = encode(header)
    return items


def stale_keys(kind: str, items: Mapping[str, str], parts: int) -> list[str]:
    """Part keys of `kind` at index `parts` or above: left over from a larger earlier report."""
    prefix = header_key(kind) + "."
    stale = []
    for key in items:
        if key.startswith(prefix) and key[len(prefix) :].isdigit() and int(key[len(prefix) :]) >= parts:
            stale.append(key)
    return stale


def reassemble(kind: str, items: Mapping[str, str]) -> Published | None:
    """The report of `kind` in `items`; None when there is no header; TornReport when it is not intact."""
    raw = items.get(header_key(kind))
    if raw is None:
        return None
    header = _header(kind, raw)
    serial, count = header["serial"], header["parts"]
    texts = []
    for index in range(count):
        value = items.get(part_key(kind, index))
        if value is None:
            raise TornReport(f"{kind} report {serial}: part {index} of {count} is missing")
        part_serial, _, text = value.partition(":")
        if part_serial != serial:
            raise TornReport(f"{kind} report {serial}: part {index} belongs to publication {part_serial!r}")
        texts.append(text)
    text = "".join(texts)
    if len(text) != header["size"] or hashlib.sha256(text.encode("utf-8")).hexdigest() != header["sha256"]:
        raise TornReport(f"{kind} report {serial}: checksum mismatch")
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise TornReport(f"{kind} report {serial}: not JSON ({exc})") from None
    if not isinstance(report, dict):
        raise TornReport(f"{kind} report {serial}: not a JSON object")
    token = header.get("token")
    return Published(report, token if isinstance(token, str) else None, serial)


def _header(kind: str, raw: str) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError:
        raise TornReport(f"{kind} report header is not JSON") from None
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise TornReport(f"{kind} report header: version {header.get('v') if isinstance(header, dict) else None!r}")
    serial, count = header.get("serial"), header.get("parts")
    if not isinstance(serial, str) or not isinstance(count, int) or not 1 <= count <= MAX_PARTS:
        raise TornReport(f"{kind} report header: bad serial or part count")
    if not isinstance(header.get("size"), int) or not isinstance(header.get("sha256"), str):
        raise TornReport(f"{kind} report header: no size or checksum")
    return header
