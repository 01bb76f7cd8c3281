"""Named fault points for crash tests.

`HVBACKUP_FAULT=<name>` makes the process kill itself with SIGKILL when it reaches that point,
so a test can interrupt a backup exactly between two steps (as a power cut or `kill -9` would).
Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "HVBACKUP_FAULT"


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
