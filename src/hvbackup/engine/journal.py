"""What a run must undo if it dies: VMs it saved or shut down.

A VM that hvbackup paused is recorded here before the pause and forgotten after it runs again.
A later run that finds the record and the VM still paused starts it (a VM left saved by a
killed backup must not stay down). Kept per host in the user's cache folder; losing it only
loses that courtesy, never data.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path


def _folder(host_name: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hvbackup" / "paused" / re.sub(r"[^A-Za-z0-9_.-]", "_", host_name)


def remember_paused(host_name: str, vm_id: str, how: str) -> None:
    folder = _folder(host_name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{vm_id}.tmp"
    tmp.write_text(json.dumps({"vm_id": vm_id, "how": how}))
    os.replace(tmp, folder / f"{vm_id}.json")


def forget_paused(host_name: str, vm_id: str) -> None:
    (_folder(host_name) / f"{vm_id}.json").unlink(missing_ok=True)


def paused_by_us(host_name: str, vm_id: str) -> str | None:
    try:
        return json.loads((_folder(host_name) / f"{vm_id}.json").read_text())["how"]
    except (OSError, ValueError, KeyError):
        return None
