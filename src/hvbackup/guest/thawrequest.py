"""Wake a `freeze` holder through its control socket, importing next to nothing.

`hvbackup-guest thaw` calls this before it loads the CLI, so the filesystems thaw a few
milliseconds after the command starts instead of after every import. Anything that can connect to
a Unix socket can do the same: `echo thaw | socat - UNIX-CONNECT:/run/hvbackup/control.sock`.
"""

from __future__ import annotations

import _socket  # not `socket`, not `pathlib`: both import enum, which costs a frozen filesystem 10-30 ms
import os
import struct

DEFAULT_STATE_DIR = "/run/hvbackup"
CONTROL_SOCKET = "control.sock"
THAW_MESSAGE = b"thaw\n"

_woken: dict[str, int] = {}  # state dir -> pid of the holder this process woke


def woken_holder(state_dir: str | os.PathLike[str]) -> int | None:
    """The pid of the holder this process already woke in `state_dir`, if any."""
    return _woken.get(os.fspath(state_dir))


def wake_holder(state_dir: str | os.PathLike[str]) -> int | None:
    """Send `thaw` to the holder listening in `state_dir`; its pid, or None if none listens there."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(os.path.join(state_dir, CONTROL_SOCKET))
        sock.sendall(THAW_MESSAGE)
        creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        sock.close()
    pid = struct.unpack("3i", creds)[0]
    _woken[os.fspath(state_dir)] = pid
    return pid
