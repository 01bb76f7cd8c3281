"""`hvbackup-guest install | uninstall`: put the agent in place of the stock VSS daemon, and back.

install writes hvbackup-guest.service (Conflicts= every stock VSS unit name, bound to the hv_vss
device like the distro units, docs/GUEST.md §10), masks the stock units so udev's SYSTEMD_WANTS cannot
start them again, and records what it masked; uninstall removes our unit, unmasks exactly what
install masked and starts the stock daemon again. With --root (tests, image building) only files
change; systemctl runs only on the live system.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hvbackup.errors import HvBackupError
from hvbackup.guest.readiness.platform import STOCK_UNITS

UNIT_NAME = "hvbackup-guest.service"
RECORD = "etc/hvbackup/install.json"
DEVICE_UNIT = "sys-devices-virtual-misc-vmbus\\x21hv_vss.device"


class InstallError(HvBackupError):
    """The agent could not be installed or removed."""


def unit_text(executable: str) -> str:
    conflicts = " ".join(STOCK_UNITS)
    return f"""[Unit]
Description=hvbackup guest agent (Hyper-V VSS daemon with application hooks)
Documentation=https://github.com/hvbackup/hvbackup/blob/main/docs/GUEST.md
Conflicts={conflicts}
After={conflicts}
BindsTo={DEVICE_UNIT}
After={DEVICE_UNIT}
ConditionPathExists=/dev/vmbus/hv_vss
IgnoreOnIsolate=1

[Service]
Type=simple
Environment=PYTHONDONTWRITEBYTECODE=1
ExecStart={executable} vssd
Restart=always
RestartSec=1
TimeoutStopSec=180
KillMode=process

[Install]
WantedBy={DEVICE_UNIT}
"""


def _live(root: Path) -> bool:
    return root == Path("/") and shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()


def _systemctl(*args: str) -> None:
    subprocess.run(["systemctl", *args], check=False, capture_output=True)


def _stock_units_present(root: Path) -> list[str]:
    dirs = ("etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system")
    return [u for u in STOCK_UNITS if any(os.path.lexists(root / d / u) for d in dirs)]


def default_executable() -> str:
    found = shutil.which("hvbackup-guest")
    return found or str(Path(sys.executable).with_name("hvbackup-guest"))


def install(root: Path = Path("/"), executable: str | None = None) -> dict[str, Any]:
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True, exist_ok=True)
    live = _live(root)
    masked = []
    for unit in _stock_units_present(root):
        link = etc / unit
        if os.path.islink(link) and os.readlink(link) == "/dev/null":
            continue  # masked already, by someone else: leave it so on uninstall
        if link.exists() and not link.is_symlink():
            raise InstallError(f"{link} is a local unit file; move it away before installing")
        if live:
            _systemctl("disable", "--now", unit)
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
        masked.append(unit)
    (etc / UNIT_NAME).write_text(unit_text(executable or default_executable()))
    wants = etc / f"{DEVICE_UNIT}.wants"
    wants.mkdir(exist_ok=True)
    (wants / UNIT_NAME).unlink(missing_ok=True)
    (wants / UNIT_NAME).symlink_to(f"/etc/systemd/system/{UNIT_NAME}")
    record = root / RECORD
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"masked": masked}))
    (root / "etc/hvbackup/hooks.d").mkdir(parents=True, exist_ok=True, mode=0o700)
    if live:
        _systemctl("daemon-reload")
        if Path("/dev/vmbus/hv_vss").exists():
            _systemctl("start", UNIT_NAME)
    return {"unit": str(etc / UNIT_NAME), "masked": masked, "started": live}


def uninstall(root: Path = Path("/")) -> dict[str, Any]:
    etc = root / "etc/systemd/system"
    live = _live(root)
    try:
        masked = json.loads((root / RECORD).read_text())["masked"]
    except (OSError, ValueError, KeyError):
        masked = []
    if live:
        _systemctl("stop", UNIT_NAME)
    (etc / f"{DEVICE_UNIT}.wants" / UNIT_NAME).unlink(missing_ok=True)
    (etc / UNIT_NAME).unlink(missing_ok=True)
    for unit in masked:
        link = etc / unit
        if os.path.islink(link) and os.readlink(link) == "/dev/null":
            link.unlink()
    (root / RECORD).unlink(missing_ok=True)
    if live:
        _systemctl("daemon-reload")
        for unit in masked:
            _systemctl("start", unit)
    return {"removed": str(etc / UNIT_NAME), "unmasked": masked, "restarted": live and bool(masked)}
