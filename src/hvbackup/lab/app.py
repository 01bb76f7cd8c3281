"""The application inside a lab guest: what the workload writes, and how a freeze hook quiesces it.

Data files get 4 KiB records (a sequence number and filler) at random places. The state file holds
the last sequence number the application has made durable; it is updated about once a second, and
at once when a freeze hook asks for a flush. While a flush request stands (from the freeze hook
until the thaw hook) the state file is left alone, so the checkpoint holds exactly the flushed state:
the lab's version of an application put into backup mode before the filesystem freeze.

The hook and the application talk through two files in `<vm>/guest/app/`: `flush.request` (a token
written by the hook) and `flush.done` (JSON {"token", "seq"} written by the application).
"""

from __future__ import annotations

import json
import random
import struct
import time
from pathlib import Path
from typing import Any

from hvbackup.atomic import atomic_write

STATE_FILE = "/var/lib/app/state"
RECORD_SIZE = 4096
RECORD_MAGIC = b"HVLABREC"
_HEADER = struct.Struct("<8sQd")  # magic, sequence number, time
STATE_EVERY = 1.0


def app_dir(guest_dir: Path) -> Path:
    return guest_dir / "app"


def encode_state(state: dict[str, Any]) -> bytes:
    body = json.dumps(state, sort_keys=True).encode()
    return body + b"\n" + b" " * (RECORD_SIZE - len(body) - 1)


def decode_state(data: bytes) -> dict[str, Any]:
    """The application state as stored in STATE_FILE (the first line of its block)."""
    return json.loads(data.split(b"\n", 1)[0])


def data_record(seq: int, rng: random.Random) -> bytes:
    return _HEADER.pack(RECORD_MAGIC, seq, time.time()) + rng.randbytes(RECORD_SIZE - _HEADER.size)


def record_sequence(data: bytes) -> int | None:
    """The sequence number of a data record, or None if `data` does not start with one."""
    if len(data) < _HEADER.size:
        return None
    magic, seq, _ = _HEADER.unpack_from(data)
    return seq if magic == RECORD_MAGIC else None


def newest_sequence(data: bytes) -> int:
    """The highest sequence number among the records of a data file, or -1 if it holds none."""
    return max((record_sequence(data[o : o + RECORD_SIZE]) or -1 for o in range(0, len(data), RECORD_SIZE)), default=-1)


def written_since(block: bytes, expected: bytes, newest_before: int) -> bool:
    """True if `block` still holds `expected`, or a record the workload wrote after `newest_before`."""
    return block == expected or (record_sequence(block) or -1) > newest_before


class FlushChannel:
    """The application's side of the hook's flush request."""

    def __init__(self, guest_dir: Path) -> None:
        self.directory = app_dir(guest_dir)
        self.request = self.directory / "flush.request"
        self.done = self.directory / "flush.done"

    def pending_token(self) -> str | None:
        """The token of a flush request not answered yet."""
        try:
            token = self.request.read_text().strip()
        except FileNotFoundError:
            return None
        return None if self.answered(token) else token

    def in_backup_mode(self) -> bool:
        return self.request.exists()

    def answered(self, token: str) -> bool:
        try:
            return json.loads(self.done.read_text()).get("token") == token
        except (FileNotFoundError, ValueError):
            return False

    def answer(self, token: str, seq: int) -> None:
        atomic_write(self.done, json.dumps({"token": token, "seq": seq}))


HOOK_SCRIPT = """#!/bin/sh
# The lab application's freeze hook: ask the application to make its state durable before the
# freeze, and end its backup mode after the thaw. Runs as hvbackup-guest runs hooks: argv[1] and
# HVBACKUP_PHASE are the phase, HVBACKUP_BACKUP_ID names the backup.
app="$(dirname "$(dirname "$(readlink -f "$0")")")/app"
case "$1" in
freeze)
    token="${HVBACKUP_BACKUP_ID:-manual}-$$"
    printf '%s\\n' "$token" > "$app/flush.request"
    tries=0
    while [ $tries -lt 400 ]; do
        if grep -q "\\"$token\\"" "$app/flush.done" 2>/dev/null; then
            echo "application flushed: $(cat "$app/flush.done")"
            exit 0
        fi
        tries=$((tries + 1))
        sleep 0.05
    done
    echo "the application did not flush within 20 s" >&2
    exit 1
    ;;
thaw|freezeFail)
    rm -f "$app/flush.request"
    echo "application resumed"
    ;;
esac
exit 0
"""
