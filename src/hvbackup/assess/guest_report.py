"""Read the guest agent's readiness report (`hvbackup-guest check --json`, docs/GUEST.md).

The report is data from inside the VM: every key is optional here, so an older or newer agent
never breaks an assessment. Missing knowledge stays `None` ("unknown"), never a guess.
"""

from __future__ import annotations

from typing import Any

AGENT_DAEMON = "hvbackup-guest"
UNFREEZABLE_FSTYPES = ("nfs", "nfs4", "cifs", "smb3", "9p", "fuse", "ceph", "glusterfs")
SYSTEM_MOUNT_PREFIXES = ("/proc", "/sys", "/dev", "/run", "/boot", "/snap", "/tmp")


class GuestReport:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def finding(self, finding_id: str) -> list[dict[str, Any]]:
        return [f for f in self.data.get("findings") or [] if f.get("id") == finding_id]

    def has_finding(self, finding_id: str) -> bool:
        return bool(self.finding(finding_id))

    @property
    def running_daemons(self) -> dict[str, Any] | None:
        """VSS daemons running in the guest by name, or None when the report does not say."""
        daemon = self.data.get("vss_daemon")
        if not isinstance(daemon, dict) or "running" not in daemon:
            return None
        return dict(daemon.get("running") or {})

    @property
    def vss_units(self) -> dict[str, str]:
        daemon = self.data.get("vss_daemon")
        return dict(daemon.get("units") or {}) if isinstance(daemon, dict) else {}

    @property
    def lacks_vss_daemon(self) -> bool:
        """True only when the report shows that no VSS daemon runs (or the guest has no VSS device)."""
        if any(self.has_finding(i) for i in ("no-vss-daemon", "vss-ic-disabled", "vss-device-missing")):
            return True
        running = self.running_daemons
        return running is not None and not running

    @property
    def agent_runs(self) -> bool:
        return AGENT_DAEMON in (self.running_daemons or {})

    @property
    def stock_daemon(self) -> str | None:
        return next((name for name in self.running_daemons or {} if name != AGENT_DAEMON), None)

    @property
    def quiesce_steps(self) -> int | None:
        """Hooks plus quiescers configured, when the report lists them; None when it cannot tell."""
        if "hooks" not in self.data and "quiescers" not in self.data:
            return None
        return len(self.data.get("hooks") or []) + len(self.data.get("quiescers") or [])

    @property
    def disks(self) -> list[dict[str, Any]]:
        return list(self.data.get("disks") or [])

    @property
    def iscsi_sessions(self) -> list[dict[str, Any]]:
        return list(self.data.get("iscsi_sessions") or [])

    def unfrozen_data_mounts(self) -> list[dict[str, Any]]:
        """Mounts the freeze skips that can hold application data: network, FUSE, loop-backed."""
        found = []
        for skip in self.data.get("freeze_skips") or []:
            mountpoint = str(skip.get("mountpoint", ""))
            fstype = str(skip.get("fstype", ""))
            if mountpoint == "/" or mountpoint.startswith(SYSTEM_MOUNT_PREFIXES):
                continue
            if fstype.startswith(UNFREEZABLE_FSTYPES) or "loop" in str(skip.get("reason", "")):
                found.append(skip)
        return found
