"""A finding, and read-only access to the guest's /sys, /proc and /etc under a root."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Finding:
    id: str
    severity: str  # blocker | warning | advice | info
    title: str
    evidence: str
    remedy: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class GuestTree:
    """Paths are given as absolute guest paths ("/sys/..."); they resolve under `root`."""

    def __init__(self, root: Path = Path("/")) -> None:
        self.root = root

    def path(self, guest_path: str) -> Path:
        return self.root / guest_path.lstrip("/")

    def read(self, guest_path: str) -> str | None:
        try:
            return self.path(guest_path).read_text(errors="replace")
        except OSError:
            return None

    def exists(self, guest_path: str) -> bool:
        return os.path.lexists(self.path(guest_path))

    def listdir(self, guest_path: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(guest_path)))
        except OSError:
            return []

    def link_name(self, guest_path: str) -> str | None:
        """The last component of a symlink's target (a driver name, a device name)."""
        try:
            return os.path.basename(os.readlink(self.path(guest_path)))
        except OSError:
            return None
